"""A real RTSP server for the live-camera tests: GStreamer's gst-rtsp-server (Debian
packages gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good/-bad, python3-gi), serving
an H.264 MP4 file at its own pace, as a camera would, on rtsp://127.0.0.1:PORT/cam.

Run with the system Python, which has the GObject bindings: /usr/bin/python3 rtsp_server.py
FILE PORT. Prints "ready" once it listens. Each client that connects gets the file from its
start, in real time.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
path, port = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( filesrc location={path} ! qtdemux ! h264parse config-interval=-1 "
    "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
)
server.get_mount_points().add_factory("/cam", factory)
if server.attach(None) == 0:
    sys.exit(f"cannot listen on port {port}")
print("ready", flush=True)
GLib.MainLoop().run()
