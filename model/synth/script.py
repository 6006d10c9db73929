"""The shopping script of one video: which item is handled when, and where the camera looks.

A video is a sequence of browsing gaps (the camera pauses, maybe wanders, then pans to the
next product) and episodes. An episode is a short chain of activities on one physical item
with the camera standing still, e.g. take it from the shelf, inspect it, put it in the
cart. Activities of an episode follow each other without a gap (the hand holds the item
throughout), activities never overlap (there is one hand), and every boundary falls on an
annotation step (1 / box_fps seconds), so boxes cover each activity exactly.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass

import numpy as np

from model.synth.config import SynthConfig
from model.synth.motion import Action, Pose
from model.synth.scene import CameraPath, Facing, Store

#: Episode kinds, indexed like ``ScriptConfig.episode_weights``.
EPISODES: tuple[tuple[str, ...], ...] = (
    ("take_from_shelf", "put_in_cart"),
    ("take_from_shelf", "inspect", "put_in_cart"),
    ("take_from_shelf", "inspect", "return_to_shelf"),
    ("take_from_shelf", "return_to_shelf"),
    ("take_out_of_cart", "return_to_shelf"),
    ("take_out_of_cart", "inspect", "put_in_cart"),
)
_WANDER_CHANCE = 0.3  # share of browsing gaps that pan past other products first
_DURATION_FIELD = {
    "take_from_shelf": "take_seconds",
    "put_in_cart": "put_seconds",
    "inspect": "inspect_seconds",
    "return_to_shelf": "return_seconds",
    "take_out_of_cart": "take_out_seconds",
}


@dataclass(frozen=True)
class CartStay:
    """An item lying in a cart slot during frames ``[start, end)`` (``end`` None: to the end)."""

    item: int
    sku: str
    slot: int
    start: int
    end: int | None


@dataclass(frozen=True)
class Absence:
    """A shelf facing that is empty during frames ``[start, end)``: its item is elsewhere."""

    facing: int
    start: int
    end: int | None


@dataclass(frozen=True)
class Reach:
    """A distractor: the hand reaches towards the shelf in ``[start, end)``, takes nothing."""

    start: int
    end: int
    target: tuple[float, float]


@dataclass(frozen=True)
class VideoScript:
    """Everything that happens in one video, in frames at the video's FPS."""

    num_frames: int
    actions: tuple[Action, ...]
    camera: CameraPath
    cart_stays: tuple[CartStay, ...]
    absences: tuple[Absence, ...]
    reaches: tuple[Reach, ...]

    def action_at(self, frame: int) -> Action | None:
        i = bisect.bisect_right([a.start for a in self.actions], frame) - 1
        if i >= 0 and frame < self.actions[i].end:
            return self.actions[i]
        return None

    def reach_at(self, frame: int) -> Reach | None:
        for reach in self.reaches:
            if reach.start <= frame < reach.end:
                return reach
        return None

    def basket(self) -> dict[str, int]:
        """Items per SKU in the cart at the end: put in cart minus taken back out."""
        counts = Counter(stay.sku for stay in self.cart_stays if stay.end is None)
        return dict(sorted(counts.items()))


def build_script(
    rng: np.random.Generator, store: Store, config: SynthConfig, num_frames: int
) -> VideoScript:
    """A random but plausible shopping trip filling ``num_frames`` frames."""
    return _ScriptBuilder(rng, store, config, num_frames).build()


class _ScriptBuilder:
    """Walks forward in time, keeping track of what is on the shelf and in the cart."""

    def __init__(
        self, rng: np.random.Generator, store: Store, config: SynthConfig, num_frames: int
    ):
        self.rng, self.store, self.config = rng, store, config
        self.fps = config.video.fps
        self.step = config.video.fps // config.video.box_fps
        self.num_frames = num_frames
        self.now = 0
        self.camera = CameraPath(int(rng.integers(0, store.max_camera_x + 1)))
        self.on_shelf = {f.index for f in store.facings}
        self.in_cart: dict[int, tuple[int, int]] = {}  # item -> (slot, since frame)
        self.slot_load = [0] * len(store.cart_slots)
        self.actions: list[Action] = []
        self.stays: list[CartStay] = []
        self.absent_since: dict[int, int] = {}
        self.absences: list[Absence] = []
        self.quiet: list[tuple[int, int]] = []  # camera still and hand free: room for distractors

    # ------------------------------------------------------------------ main loop
    def build(self) -> VideoScript:
        self._pause(self._frames(self.config.script.pause_seconds))
        tail = self.fps  # leave at least a second of browsing at the end
        while True:
            kind = self._choose_episode()
            item = self._choose_item(kind)
            # Browsing: pause, sometimes wander past other products and pause again, then
            # pan to where the episode happens.
            pause = self._frames(self.config.script.pause_seconds)
            here = self.camera.last_x
            wander_x = here
            wander_pause = 0
            if self.rng.random() < _WANDER_CHANCE:
                wander_x = int(self.rng.integers(0, self.store.max_camera_x + 1))
                wander_pause = self._frames(self.config.script.pause_seconds)
            wander_pan = self._pan_frames(here, wander_x)
            camera_x = self._camera_for(kind, item, wander_x)
            pan = self._pan_frames(wander_x, camera_x)
            durations = [self._frames(self._duration_range(a)) for a in EPISODES[kind]]
            gap = pause + wander_pan + wander_pause + pan
            if self.now + gap + sum(durations) + tail > self.num_frames:
                break
            self._pause(pause)
            self._pan(wander_x, wander_pan)
            self._pause(wander_pause)
            self._pan(camera_x, pan)
            self._episode(kind, item, durations)
        self._browse_until_end()
        for facing, since in self.absent_since.items():
            self.absences.append(Absence(facing, since, None))
        for item, (slot, since) in self.in_cart.items():
            self.stays.append(CartStay(item, self.store.facings[item].sku, slot, since, None))
        return VideoScript(
            num_frames=self.num_frames,
            actions=tuple(self.actions),
            camera=self.camera,
            cart_stays=tuple(sorted(self.stays, key=lambda s: (s.start, s.item))),
            absences=tuple(sorted(self.absences, key=lambda a: (a.start, a.facing))),
            reaches=self._place_reaches(),
        )

    # ------------------------------------------------------------------ choices
    def _choose_episode(self) -> int:
        weights = np.array(self.config.script.episode_weights, float)
        if not self.in_cart:
            weights[4:] = 0.0  # nothing to take out of the cart yet
        if not self.on_shelf:
            weights[:4] = 0.0
        return int(self.rng.choice(len(weights), p=weights / weights.sum()))

    def _choose_item(self, kind: int) -> int:
        """A physical item: a facing still on the shelf, or an item lying in the cart."""
        if EPISODES[kind][0] == "take_out_of_cart":
            return int(self.rng.choice(sorted(self.in_cart)))
        skus = sorted({self.store.facings[i].sku for i in self.on_shelf})
        sku = skus[int(self.rng.integers(len(skus)))]
        return int(
            self.rng.choice(sorted(i for i in self.on_shelf if self.store.facings[i].sku == sku))
        )

    def _camera_for(self, kind: int, item: int, current: int) -> int:
        """Where the camera must stand for the episode: its item's shelf slot in view."""
        if EPISODES[kind] == ("take_out_of_cart", "inspect", "put_in_cart"):
            return current  # never touches the shelf
        facing = self.store.facings[item]
        in_frame = facing.x0 + facing.width / 2 - current
        if 0.2 * self.store.width <= in_frame <= 0.8 * self.store.width and self.rng.random() < 0.5:
            return current
        return self.store.camera_x_showing(facing, float(self.rng.uniform(0.3, 0.7)))

    def _duration_range(self, activity: str) -> tuple[float, float]:
        return getattr(self.config.script, _DURATION_FIELD[activity])

    def _frames(self, seconds: tuple[float, float]) -> int:
        """A random duration from ``seconds``, in frames, a whole number of annotation steps."""
        steps = round(float(self.rng.uniform(*seconds)) * self.fps / self.step)
        return max(1, steps) * self.step

    def _pan_frames(self, from_x: int, to_x: int) -> int:
        distance = abs(to_x - from_x)
        if distance == 0:
            return 0
        speed = float(self.rng.uniform(*self.config.script.pan_pixels_per_second))
        return max(1, round(distance / speed * self.fps / self.step)) * self.step

    # ------------------------------------------------------------------ time line
    def _pause(self, frames: int) -> None:
        if frames > 0:
            self.quiet.append((self.now, self.now + frames))
            self.now += frames

    def _pan(self, to_x: int, frames: int) -> None:
        if frames > 0:
            self.camera.pan(self.now, self.now + frames, to_x)
            self.now += frames

    def _browse_until_end(self) -> None:
        """Wander along the shelves for what is left of the video."""
        while self.num_frames - self.now > 2 * self.fps:
            to_x = int(self.rng.integers(0, self.store.max_camera_x + 1))
            pan = min(self._pan_frames(self.camera.last_x, to_x), self.num_frames - self.now)
            if pan > 0:
                self._pan(to_x, pan)
            self._pause(
                min(self._frames(self.config.script.pause_seconds), self.num_frames - self.now)
            )
        self._pause(self.num_frames - self.now)

    def _episode(self, kind: int, item: int, durations: list[int]) -> None:
        """Append the episode's actions and update shelf and cart state."""
        facing = self.store.facings[item]
        hold = self._hold_pose()
        for activity, frames in zip(EPISODES[kind], durations, strict=True):
            start, end = self.now, self.now + frames
            src, dst = self._endpoints(activity, facing, item, hold)
            self.actions.append(Action(activity, facing.sku, item, start, end, src, dst))
            self._update_state(activity, item, start, end)
            self.now = end

    def _hold_pose(self) -> Pose:
        """Where the hand holds a product in front of the camera during this episode."""
        w, h = self.store.width, self.store.height
        return Pose(
            cx=w * float(self.rng.uniform(0.4, 0.6)),
            cy=h * float(self.rng.uniform(0.38, 0.46)),
            height=h * float(self.rng.uniform(0.42, 0.5)),
        )

    def _endpoints(self, activity: str, facing: Facing, item: int, hold: Pose) -> tuple[Pose, Pose]:
        shelf = facing.pose(self.camera.last_x)
        if activity == "take_from_shelf":
            return shelf, hold
        if activity == "return_to_shelf":
            return hold, shelf
        if activity == "take_out_of_cart":
            return self.store.cart_slots[self.in_cart[item][0]], hold
        if activity == "put_in_cart":
            slot = self._free_slot()
            self.in_cart[item] = (slot, -1)  # the stay starts when the put ends
            self.slot_load[slot] += 1
            return hold, self.store.cart_slots[slot]
        return hold, hold  # inspect

    def _free_slot(self) -> int:
        """The least loaded cart slot (random among ties), so the cart fills up evenly."""
        load = np.array(self.slot_load)
        return int(self.rng.choice(np.flatnonzero(load == load.min())))

    def _update_state(self, activity: str, item: int, start: int, end: int) -> None:
        if activity == "take_from_shelf":
            self.on_shelf.discard(item)
            self.absent_since[item] = start
        elif activity == "return_to_shelf":
            self.absences.append(Absence(item, self.absent_since.pop(item), end))
            self.on_shelf.add(item)
        elif activity == "put_in_cart":
            self.in_cart[item] = (self.in_cart[item][0], end)
        elif activity == "take_out_of_cart":
            slot, since = self.in_cart.pop(item)
            self.slot_load[slot] -= 1
            self.stays.append(CartStay(item, self.store.facings[item].sku, slot, since, start))

    # ------------------------------------------------------------------ distractors
    def _place_reaches(self) -> tuple[Reach, ...]:
        """Empty reaches towards the shelf, each inside a quiet interval of its own."""
        rate = self.config.distractors.empty_reach_per_minute
        wanted = int(self.rng.poisson(rate * self.num_frames / self.fps / 60.0))
        reaches = []
        free = list(self.quiet)
        for _ in range(wanted):
            length = self._frames((1.6, 2.4))
            fitting = [i for i, (s, e) in enumerate(free) if e - s >= length + 2 * self.step]
            if not fitting:
                break
            s, e = free.pop(int(self.rng.choice(fitting)))
            start = s + self.step + int(self.rng.integers(0, e - s - length - 2 * self.step + 1))
            target = (
                self.store.width * float(self.rng.uniform(0.2, 0.8)),
                self.store.shelf_height * float(self.rng.uniform(0.2, 0.85)),
            )
            reaches.append(Reach(start, start + length, target))
        return tuple(sorted(reaches, key=lambda r: r.start))
