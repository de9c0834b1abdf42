"""Student kernels in a bubblewrap sandbox: the one place where kernels are launched for grading.

What a sandboxed kernel sees: a read-only system (``/usr``), the Python it runs on and its packages,
the kit without the answers of the assignment being graded (and never the instructor package that
holds this module), a
private copy of the student's submission (the only writable place besides a small ``/tmp``) and
the channel folder holding the kernel's Unix sockets. No network (a new, empty network namespace),
no course folder, gradebook, exchange, other students or the grader's home. It runs as an
unprivileged user id of its own with limits on memory, CPU time, processes, file size and open
files, in its own pid namespace: when the sandbox goes, every process the student started goes too.

Debian's ``bubblewrap`` builds it (``apt-get install bubblewrap``); the grader runs as root (as CI
does) or with unprivileged user namespaces allowed.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from llmkit.errors import LLMKitError

# Packages of the kit that a kernel may import, found wherever they are installed.
KIT_PACKAGES = ("llmkit", "llmkit_solutions")
INSTRUCTOR_PACKAGES = ("llmkit_instructor",)  # this grader: no kernel may import it
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/nsswitch.conf",
                "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/fonts", "/etc/mime.types")


class SandboxUnavailable(LLMKitError):
    """The sandbox cannot start here; the message names the fix."""


@dataclass
class Limits:
    """Per-kernel limits; ``LLMKIT_SANDBOX_MEMORY_MB`` etc. override them for a whole course."""

    memory_mb: int = int(os.environ.get("LLMKIT_SANDBOX_MEMORY_MB", "6144"))  # address space, torch included
    cpu_seconds: int = int(os.environ.get("LLMKIT_SANDBOX_CPU_SECONDS", "1200"))
    processes: int = int(os.environ.get("LLMKIT_SANDBOX_PROCESSES", "96"))  # threads count too
    file_mb: int = 64
    open_files: int = 512
    tmp_mb: int = 256
    wall_seconds: float = float(os.environ.get("LLMKIT_NOTEBOOK_TIMEOUT", "900"))


def bwrap_path() -> str:
    found = shutil.which("bwrap")
    if not found:
        raise SandboxUnavailable("grading needs bubblewrap, which is not installed: run `apt-get install -y "
                                 "bubblewrap` (or pass --no-sandbox to grade without protection, never for a real class).")
    return found


def preflight() -> None:
    """Start a trivial sandbox once; raise SandboxUnavailable with the fix when this machine cannot."""
    import subprocess

    bwrap = bwrap_path()
    for tool in ("setpriv", "prlimit"):
        if os.geteuid() == 0 and shutil.which(tool) is None:
            raise SandboxUnavailable(f"grading needs `{tool}` from util-linux: run `apt-get install -y util-linux`.")
    probe = [bwrap, *_isolation_args(), "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
             "--symlink", "usr/lib", "/lib", "--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
    if os.path.exists("/usr/lib64"):
        probe[-2:-2] = ["--symlink", "usr/lib64", "/lib64"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"the sandbox cannot start ({exc}).") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        hint = ("unprivileged user namespaces are blocked here (Ubuntu 24.04's AppArmor default, or "
                "kernel.unprivileged_userns_clone=0): grade as root, or allow them with `sudo sysctl -w "
                "kernel.apparmor_restrict_unprivileged_userns=0`")
        raise SandboxUnavailable(f"the grading sandbox cannot start ({detail}); {hint}. `llmkit course grade "
                                 "--no-sandbox` grades without protection (never for a real class).")


def _isolation_args() -> list[str]:
    """Namespaces: as root, a real user switch follows (setpriv); otherwise a user namespace does the job."""
    common = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
              "--die-with-parent", "--new-session"]
    if os.geteuid() == 0:
        return common
    return [*common, "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]


def package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def plugin_packages() -> list[str]:
    """Top-level packages of the kit's entry-point plugins (first-party and installed ones)."""
    from importlib.metadata import entry_points

    return sorted({ep.value.split(":")[0].split(".")[0] for ep in entry_points(group="llmkit")})


@dataclass
class SandboxSpec:
    """Everything needed to build one sandbox's command line."""

    workdir: Path  # the private copy of the submission; the only writable folder
    hidden_modules: set[str] = field(default_factory=set)  # dotted names: packages or modules to leave out
    limits: Limits = field(default_factory=Limits)
    uid: int = 0  # an unprivileged id of its own, so process limits count only this kernel


class _Binds:
    """bwrap arguments that make every parent folder of a bound path traversable (0755)."""

    def __init__(self):
        self.args: list[str] = []
        self.dirs: set[str] = {"/"}
        self.bound: list[str] = []

    def _parents(self, path: str):
        parts = Path(path).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent in self.dirs or any(parent == b or parent.startswith(b + "/") for b in self.bound):
                continue
            self.dirs.add(parent)
            self.args += ["--perms", "0755", "--dir", parent]

    def ro(self, src, dest=None):
        dest = str(dest or src)
        self._parents(dest)
        self.args += ["--ro-bind", str(src), dest]
        self.bound.append(dest)

    def rw(self, src, dest=None):
        dest = str(dest or src)
        self._parents(dest)
        self.args += ["--bind", str(src), dest]
        self.bound.append(dest)

    def empty(self, dest):
        self.args += ["--perms", "0755", "--tmpfs", str(dest)]


def _filtered_copy(package: Path, hidden: set[str], into: Path, dotted: str) -> Path:
    """A copy of ``package``'s sources without the hidden modules (and without compiled caches)."""
    target = into / dotted
    for src in package.rglob("*"):
        rel = src.relative_to(package)
        if "__pycache__" in rel.parts or src.is_dir():
            continue
        module = ".".join((dotted, *rel.with_suffix("").parts))
        if any(module == h or module.startswith(h + ".") for h in hidden):
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    for folder in [target, *[p for p in target.rglob("*") if p.is_dir()]]:
        folder.chmod(0o755)
    for f in target.rglob("*"):
        if f.is_file():
            f.chmod(0o644)
    return target


def bwrap_command(spec: SandboxSpec, inner: list[str], scratch: Path) -> list[str]:
    """The full command: bwrap's view of the world, then the user switch and limits, then ``inner``."""
    b = _Binds()
    b.ro("/usr")
    # /tmp first: a venv or checkout that lives under /tmp (a CI clone) is bound on top of it, not hidden by it.
    b.args += ["--perms", "1777", "--size", str(spec.limits.tmp_mb * 2**20), "--tmpfs", "/tmp"]
    b.dirs.add("/tmp")
    b.args += ["--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/sbin", "/sbin"]
    if os.path.exists("/usr/lib64"):
        b.args += ["--symlink", "usr/lib64", "/lib64"]
    for path in SYSTEM_FILES:
        if os.path.exists(path):
            b.ro(path)
    for prefix in sorted({sys.base_prefix, sys.prefix}, key=len):
        if not prefix.startswith("/usr"):
            b.ro(prefix)
    hidden = set(spec.hidden_modules)
    for name in [*KIT_PACKAGES, *plugin_packages()]:
        where = package_dir(name)
        if where is None:
            continue
        if any(name == h for h in hidden):
            if any(str(where).startswith(bnd + "/") for bnd in b.bound):
                b.empty(where)  # installed inside a bound prefix: cover it
            continue
        inner_hidden = {h for h in hidden if h.startswith(name + ".")}
        source = _filtered_copy(where, inner_hidden, scratch / "packages", name) if inner_hidden else where
        b.ro(source, where)
    for name in INSTRUCTOR_PACKAGES:  # never bound; installed inside a bound prefix (site-packages), covered
        where = package_dir(name)
        if where is not None and any(str(where).startswith(bnd + "/") for bnd in b.bound):
            b.empty(where)
    b.args += ["--dev", "/dev", "--proc", "/proc"]
    fonts = matplotlib_font_cache()
    if fonts is not None:  # MPLCONFIGDIR starts with the font list: matplotlib does not scan every font again
        b.args += ["--perms", "0777", "--dir", "/tmp/matplotlib"]
        b.dirs.add("/tmp/matplotlib")
        b.ro(fonts, f"/tmp/matplotlib/{fonts.name}")
    b.rw(scratch / "channel")  # the kernel's sockets: the same path inside and out
    b.rw(spec.workdir, "/home/student/work")
    lim = spec.limits
    if os.geteuid() == 0:  # a user id of its own: process limits count only this kernel
        become = ["setpriv", f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups", "--inh-caps=-all",
                  "--bounding-set=-all", "--no-new-privs"]
        processes = lim.processes
    else:  # the instructor's own id: the limit counts their other processes too
        become = []
        processes = lim.processes + _processes_of_current_user()
    return [
        bwrap_path(), *_isolation_args(), "--clearenv", "--hostname", "sandbox",
        "--setenv", "PATH", f"{sys.prefix}/bin:/usr/bin:/bin", "--setenv", "HOME", "/home/student",
        "--setenv", "TMPDIR", "/tmp", "--setenv", "IPYTHONDIR", "/tmp/ipython", "--setenv", "MPLBACKEND", "Agg",
        "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
        "--setenv", "XDG_CACHE_HOME", "/tmp/cache", "--setenv", "LLMKIT_NO_WIDGETS", "1",
        "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
        "--setenv", "NBGRADER_EXECUTION", "autograde",
        "--setenv", "OMP_NUM_THREADS", os.environ.get("LLMKIT_SANDBOX_THREADS", str(os.cpu_count() or 1)),
        *b.args, "--chdir", "/home/student/work", "--", *become,
        "prlimit", f"--as={lim.memory_mb * 2**20}", f"--cpu={lim.cpu_seconds}", f"--nproc={processes}",
        f"--fsize={lim.file_mb * 2**20}", f"--nofile={lim.open_files}", "--core=0", "--",
        *inner,
    ]


def _processes_of_current_user() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


_next_uid = [0]


def fresh_uid() -> int:
    """An unprivileged user id no other running sandbox of this grader has (process limits are per id)."""
    _next_uid[0] = (_next_uid[0] + 1) % 20000
    return 200000 + (os.getpid() % 500) * 20000 // 500 + _next_uid[0] % (20000 // 500)


def prepare_workdir(source: Path, scratch: Path, uid: int) -> Path:
    """A private, writable copy of the submission folder, owned by the sandbox's user (root only)."""
    if os.geteuid() != 0:
        uid = os.getuid()
    work = scratch / "work"
    shutil.copytree(source, work, symlinks=False, ignore=shutil.ignore_patterns(".ipynb_checkpoints"),
                    ignore_dangling_symlinks=True)
    for path in [work, *work.rglob("*")]:
        if path.is_symlink():
            path.unlink()
            continue
        os.chown(path, uid, uid)
    (scratch / "channel").mkdir()
    os.chown(scratch / "channel", uid, uid)
    if os.geteuid() == 0:
        os.chown(scratch, 0, 0)
    scratch.chmod(0o711)
    return work


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start inside the sandbox, talking over Unix sockets only."""

    def __init__(self, sandbox: SandboxSpec, scratch: Path, **kwargs):
        super().__init__(kernel_name="python3", **kwargs)
        self.sandbox = sandbox
        self.scratch = scratch
        self.transport = "ipc"
        self.ip = str(scratch / "channel" / "kernel")
        self.connection_file = str(scratch / "channel" / "kernel.json")
        self._kernel_spec = KernelSpec(
            argv=[f"{sys.prefix}/bin/python", "-I", "-m", "ipykernel_launcher", "-f", "{connection_file}",
                  "--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=CRITICAL"],
            display_name="Python 3 (llmkit sandbox)", language="python", interrupt_mode="message",
        )

    def format_kernel_cmd(self, extra_arguments=None):
        inner = [a.replace("{connection_file}", self.connection_file) for a in self._kernel_spec.argv]
        return bwrap_command(self.sandbox, inner, self.scratch)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        if os.geteuid() == 0:
            os.chown(self.connection_file, self.sandbox.uid, self.sandbox.uid)


def new_scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="llmkit-sandbox-"))


@functools.lru_cache(maxsize=1)
def matplotlib_font_cache() -> Path | None:
    """matplotlib's font list, built once per machine by the grader (never by a kernel) in
    ~/.cache/llmkit; each kernel sees it read-only, so no student can change another's. None
    without matplotlib, or when it cannot be built (kernels then build their own, as before)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    try:
        folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmkit" / \
            f"matplotlib-{version('matplotlib')}"
    except PackageNotFoundError:
        return None
    found = sorted(folder.glob("fontlist-*.json"))
    if found:
        return found[-1]
    build = Path(tempfile.mkdtemp(prefix="llmkit-fonts-"))
    try:  # no home folder: the fonts a kernel can see (system and matplotlib's own), not the grader's
        env = {"PATH": "/usr/bin:/bin", "HOME": str(build), "MPLCONFIGDIR": str(build), "MPLBACKEND": "Agg"}
        subprocess.run([sys.executable, "-I", "-c", "import matplotlib.font_manager"], env=env,
                       capture_output=True, timeout=300, check=False)
        made = sorted(build.glob("fontlist-*.json"))
        if not made:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{made[-1].name}.{os.getpid()}"
        shutil.copyfile(made[-1], partial)
        partial.chmod(0o644)
        os.replace(partial, folder / made[-1].name)  # atomic: two graders building at once both succeed
        return folder / made[-1].name
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(build, ignore_errors=True)
