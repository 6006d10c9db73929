"""Which PostgreSQL binaries a throwaway server runs: ones the server's account can reach.

As root we run PostgreSQL as an unprivileged account (see ``postgres._run_as``). Its ambient
``dac_read_search`` capability lets it open files under root's private home, but ``initdb`` and
``postgres`` check their own binaries with ``access()``, which ignores capabilities: binaries
under a 0700 directory (pgserver's, inside a virtualenv in ``~/.cache``) fail with
"invalid binary ... Permission denied". So we judge each candidate by its mode bits alone, and
copy a self-contained install the account cannot reach to a root-owned, world-readable place.

Candidates, first usable wins: ``CARTMEM_POSTGRES_BIN_DIR``, pgserver's bundled PostgreSQL
(located, never imported: importing it has side effects), the newest Debian/Ubuntu install.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.devstack._process import progress
from app.errors import DevStackError

OVERRIDE_ENV = "CARTMEM_POSTGRES_BIN_DIR"
_PGSERVER = "pgserver"
COPY_ROOT = Path("/var/cache/cartmem")
SYSTEM_ROOT = Path("/usr/lib/postgresql")
# The two programs we run; each finds the other beside itself and checks it with access().
_BINARIES = ("initdb", "postgres")
_READ, _SEARCH = 0o4, 0o1
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_SOURCE_NOTE = "SOURCE"  # in each copy: the install it was copied from, for people and cleanup


@dataclass(frozen=True)
class Install:
    """A self-contained PostgreSQL (``bin/``, ``lib/``, ``share/``) that still runs when moved.

    ``companions`` are directories outside ``root`` the binaries load libraries from by a path
    relative to themselves, so a copy must keep them at the same place relative to ``root``.
    """

    root: Path
    companions: tuple[Path, ...] = ()

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def base(self) -> Path:
        """The directory holding ``root`` and its companions: what a copy reproduces."""
        return Path(os.path.commonpath([self.root, *self.companions]))


@dataclass(frozen=True)
class Candidate:
    """Binaries we may run, before anyone has checked that the server's account can."""

    origin: str  # for people: where these binaries come from
    bin_dir: Path
    install: Install | None  # set when bin_dir belongs to an install we may copy


def find_install(root: Path) -> Install | None:
    """``root`` as a relocatable install, or None when it is not one (Debian's keeps share/
    in /usr/share, reached by an absolute path)."""
    if not all((root / "bin" / name).is_file() for name in _BINARIES):
        return None
    if not (root / "lib").is_dir():
        return None
    share = root / "share"
    if not any((d / "postgres.bki").is_file() for d in (share, share / "postgresql")):
        return None
    # auditwheel moves a wheel's shared libraries to <package>.libs beside the package and
    # points the binaries at it by RPATH $ORIGIN/../../../<package>.libs (pgserver's libpq)
    libs = root.parent.parent / f"{root.parent.name}.libs"
    return Install(root, (libs,) if libs.is_dir() else ())


def pgserver_root() -> Path | None:
    """pgserver's bundled install, if pgserver is installed for this Python."""
    spec = importlib.util.find_spec("pgserver")  # locate only: importing it has side effects
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent / "pginstall"
    return root if (root / "bin" / "postgres").is_file() else None


def candidates(
    override: str | None, pgserver: Path | None, system_root: Path = SYSTEM_ROOT
) -> list[Candidate]:
    """Where binaries may come from, in order of preference."""
    found: list[Candidate] = []
    if override:
        bin_dir = Path(override).absolute()
        missing = [name for name in _BINARIES if not (bin_dir / name).is_file()]
        if missing:
            raise DevStackError(
                f"{OVERRIDE_ENV}={override} has no {' or '.join(missing)}; point it at the bin "
                "directory of a PostgreSQL install, or unset it"
            )
        found.append(Candidate(OVERRIDE_ENV, bin_dir, find_install(bin_dir.parent)))
    if pgserver is not None:
        found.append(Candidate(_PGSERVER, pgserver / "bin", find_install(pgserver)))
    versions = [
        d
        for d in system_root.glob("*")
        if d.name.isdigit() and all((d / "bin" / name).is_file() for name in _BINARIES)
    ]
    for root in sorted(versions, key=lambda d: int(d.name), reverse=True)[:1]:
        found.append(Candidate(f"system PostgreSQL {root.name}", root / "bin", find_install(root)))
    return found


def _allows(st: os.stat_result, account: pwd.struct_passwd, bits: int) -> bool:
    # the server runs with --clear-groups, so only the account's primary group counts
    if st.st_uid == account.pw_uid:
        granted = st.st_mode >> 6
    elif st.st_gid == account.pw_gid:
        granted = st.st_mode >> 3
    else:
        granted = st.st_mode
    return granted & bits == bits


def _ancestors(path: Path) -> Iterator[Path]:
    """Every directory the kernel walks to reach ``path``: along the path as written and
    along the path its symlinks lead to."""
    seen: set[Path] = set()
    for chain in (Path(os.path.abspath(path)), path.resolve()):
        for directory in reversed(chain.parents):
            if directory not in seen:
                seen.add(directory)
                yield directory


def unreachable(bin_dir: Path, account: pwd.struct_passwd) -> str | None:
    """Why ``account`` cannot run ``bin_dir``'s binaries, judged by mode bits alone (as
    ``access()`` judges them), or None when it can."""
    for name in _BINARIES:
        binary = bin_dir / name
        for directory in _ancestors(binary):
            st = directory.stat()
            if not _allows(st, account, _SEARCH):
                return (
                    f"{directory} (mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}) is not "
                    f"searchable by {account.pw_name}"
                )
        st = binary.stat()
        if not _allows(st, account, _READ | _SEARCH):
            return (
                f"{binary} (mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}) is not readable "
                f"and executable by {account.pw_name}"
            )
    return None


def copy_location(install: Install, copy_root: Path = COPY_ROOT) -> tuple[Path, Path]:
    """(directory of the copy of ``install``, its bin directory), keyed by the install's path
    and its ``postgres`` binary, so an upgraded install gets a new copy."""
    st = (install.bin_dir / "postgres").stat()
    source = f"{install.root.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    copy = copy_root / f"postgres-{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    return copy, copy / install.root.relative_to(install.base) / "bin"


def _unsafe(path: Path, st: os.stat_result) -> str | None:
    if st.st_uid != 0:
        return f"{path} is owned by uid {st.st_uid}, not root"
    if not stat.S_ISLNK(st.st_mode) and st.st_mode & _OTHERS_WRITE:
        return f"{path} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def copy_problem(copy: Path, bin_dir: Path) -> str | None:
    """Why the copy at ``copy`` must not be run, or None: each entry owned by root and not
    writable by anyone else, symlinks staying inside, both binaries present."""
    top = copy.lstat()
    if not stat.S_ISDIR(top.st_mode):
        return f"{copy} is not a directory"
    if problem := _unsafe(copy, top):
        return problem
    for parent, dirs, files in os.walk(copy):
        for name in [*dirs, *files]:
            path = Path(parent, name)
            st = path.lstat()
            if problem := _unsafe(path, st):
                return problem
            if stat.S_ISLNK(st.st_mode) and not path.resolve().is_relative_to(copy.resolve()):
                return f"{path} links outside the copy"
    missing = [name for name in _BINARIES if not (bin_dir / name).is_file()]
    if missing:
        return f"{bin_dir} has no {' or '.join(missing)}"
    return None


def _seal(tree: Path) -> None:
    """Leave a fresh copy changeable by root alone and readable by everyone."""
    for parent, dirs, files in os.walk(tree):
        for name in [*dirs, *files]:
            path = Path(parent, name)
            os.lchown(path, 0, 0)
            if path.is_symlink():
                continue
            executable = path.is_dir() or path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)
    os.chown(tree, 0, 0)
    tree.chmod(0o755)


def ensure_copy(install: Install, copy_root: Path = COPY_ROOT) -> Path:
    """The bin directory of a root-owned, world-readable copy of ``install``, made if needed.

    The copy is made beside its final place and renamed into it, so a copy is complete once
    it exists; when two processes race, the loser drops its own and uses the winner's. An
    existing copy is checked before use and refused if anyone but root could have changed it.
    """
    copy, bin_dir = copy_location(install, copy_root)
    try:
        copy_root.mkdir(parents=True)
    except FileExistsError:
        pass
    else:
        copy_root.chmod(0o755)  # whatever our umask: the server's account must search it
    if problem := _unsafe(copy_root, copy_root.stat()):  # else a copy could be swapped
        raise DevStackError(
            f"cannot keep a PostgreSQL copy in {copy_root}: {problem}; make it root's and "
            f"mode 755 (`chown root: {copy_root} && chmod 755 {copy_root}`)"
        )
    if not copy.exists():
        _copy_into(install, copy)
    if problem := copy_problem(copy, bin_dir):
        raise DevStackError(
            f"refusing the PostgreSQL copy {copy} ({problem}); delete it (`rm -rf {copy}`) "
            "and start again to have it made afresh"
        )
    return bin_dir


def _copy_into(install: Install, copy: Path) -> None:
    base = install.base
    staging = Path(tempfile.mkdtemp(prefix=f".{copy.name}-", dir=copy.parent))
    try:
        for part in (install.root, *install.companions):
            shutil.copytree(
                part,
                staging / part.relative_to(base),
                symlinks=True,
                # headers only serve building extensions
                ignore=lambda d, names, part=part: ["include"] if Path(d) == part else [],
                dirs_exist_ok=True,
            )
        (staging / _SOURCE_NOTE).write_text(f"{install.root}\n")
        _seal(staging)
        try:
            staging.rename(copy)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not copy.is_dir():
                raise
            # another process made the same copy first: use theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def copy_source(copy: Path) -> str | None:
    """The install a copy was made from, as recorded in it."""
    try:
        return (copy / _SOURCE_NOTE).read_text().strip()
    except OSError:
        return None


def default_candidates() -> list[Candidate]:
    """The candidates of this machine and environment."""
    return candidates(os.environ.get(OVERRIDE_ENV) or None, pgserver_root())


def choose_bin_dir(
    account: pwd.struct_passwd | None,
    found: Sequence[Candidate] | None = None,
    copy_root: Path = COPY_ROOT,
) -> Path:
    """The bin directory to run PostgreSQL from as ``account`` (None: as ourselves).

    The first candidate ``account`` can reach wins; one it cannot reach is replaced by a copy
    when it is a self-contained install, else passed over, except an explicit
    ``CARTMEM_POSTGRES_BIN_DIR``, which is never passed over.
    """
    found = default_candidates() if found is None else found
    if not found:
        raise DevStackError(
            "no PostgreSQL binaries found; run `apt-get install postgresql` (or, on Python "
            f"< 3.13, `pip install pgserver`), or set {OVERRIDE_ENV} to a PostgreSQL bin directory"
        )
    passed_over: list[str] = []
    if not any(c.origin in (OVERRIDE_ENV, _PGSERVER) for c in found):
        passed_over.append("pgserver is not installed for this Python")
    for candidate in found:
        if account is None:  # the server runs as us: whatever we found, we can run
            return _chosen(candidate, candidate.bin_dir, passed_over)
        problem = unreachable(candidate.bin_dir, account)
        if problem is None:
            return _chosen(candidate, candidate.bin_dir, passed_over)
        why = f"{candidate.origin} in {candidate.bin_dir} is out of {account.pw_name}'s reach"
        why += f" ({problem})"
        if candidate.install is not None:
            try:
                copy_bin = ensure_copy(candidate.install, copy_root)
            except OSError as exc:
                why += f" and could not be copied ({exc})"
            else:
                copy_unreachable = unreachable(copy_bin, account)
                if copy_unreachable is None:
                    return _chosen(
                        candidate, copy_bin, [*passed_over, f"{why}: using a root-owned copy"]
                    )
                why += f" and so is its copy in {copy_bin} ({copy_unreachable})"
        if candidate.origin == OVERRIDE_ENV:
            raise DevStackError(
                f"{why}; point {OVERRIDE_ENV} at binaries outside private home directories"
            )
        passed_over.append(why)
    raise DevStackError(
        "no PostgreSQL binaries the server's account can run ("
        + "; ".join(passed_over)
        + f"); run `apt-get install postgresql` or set {OVERRIDE_ENV} to a bin directory "
        "readable by everyone"
    )


def _chosen(candidate: Candidate, bin_dir: Path, passed_over: list[str]) -> Path:
    because = f" ({'; '.join(passed_over)})" if passed_over else ""
    progress(f"PostgreSQL binaries: {candidate.origin}, {bin_dir}{because}")
    return bin_dir
