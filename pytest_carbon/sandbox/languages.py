"""The languages a ``kind: program`` task may be written in, and their toolchains.

A :class:`Toolchain` says where the program's source goes, how it is compiled (where its
language compiles) and run, and which host directories the sandbox shows it, read-only,
besides :data:`~pytest_carbon.sandbox.isolation.SYSTEM_DIRS` (``/usr/bin``, ``/usr/lib``,
``/lib`` ...): the C and C++ headers (``/usr/include``), Rust's sysroot, a JDK outside
``/usr/lib``. Nothing else of the host is visible to a compiler or a program, so a
source that includes ``/etc/shadow`` or a file under ``/home`` does not compile.

Each tool is looked for in the system's directories (``/usr/bin``, ``/bin``; Rust also
in ``~/.cargo/bin``), or where ``PYTEST_CARBON_<LANGUAGE>`` (``PYTEST_CARBON_CPP``,
``PYTEST_CARBON_JAVASCRIPT`` ...) points: the path of the compiler (``g++``, ``gcc``,
``rustc``, ``javac``) or interpreter (``node``, ``python``). A language whose tool is not
there has a toolchain with ``missing`` set to the reason: its items skip with it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

#: The languages a program may be written in; ``python`` is the default.
LANGUAGES = ("python", "cpp", "c", "javascript", "rust", "java")
#: Other names accepted in a task (``language: c++``).
ALIASES = {"c++": "cpp", "js": "javascript", "node": "javascript", "py": "python"}
#: Compiler flags: optimised builds, as a user measuring frugality would ship them.
CXX_FLAGS = ("-O2", "-std=c++17", "-pipe")
C_FLAGS = ("-O2", "-std=c17", "-pipe")
RUST_FLAGS = ("-O", "-C", "debuginfo=0")
#: The JVM within the sandbox's address-space limit (RLIMIT_AS, 2 GiB by default).
JVM_FLAGS = (
    "-Xmx512m",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:CompressedClassSpaceSize=64m",
    "-XX:+UseSerialGC",
)
#: Where tools are looked for when no ``PYTEST_CARBON_<LANGUAGE>`` names one.
SEARCH_PATH = "/usr/bin:/bin"
#: Source file name per language (Java's public class must be ``Main``).
SOURCES = {
    "python": "main.py",
    "cpp": "main.cpp",
    "c": "main.c",
    "javascript": "main.js",
    "rust": "main.rs",
    "java": "Main.java",
}
#: The tool each language needs, as named on the system.
TOOLS = {
    "python": "python3",
    "cpp": "g++",
    "c": "gcc",
    "javascript": "node",
    "rust": "rustc",
    "java": "javac",
}


@dataclass(frozen=True)
class Toolchain:
    """How to build and run a program of ``language``. ``compile``: the compiler's argv
    (None: nothing to compile), run in the program's directory; ``run``: the program's
    argv, run there with the input on stdin; ``mounts``: host directories shown
    read-only beyond the sandbox's system directories; ``missing``: why this language
    cannot be used here (None when it can); ``tool``: the compiler or interpreter."""

    language: str
    source: str
    compile: tuple[str, ...] | None
    run: tuple[str, ...]
    mounts: tuple[str, ...] = ()
    missing: str | None = None
    tool: str = ""

    def describe(self) -> str:
        """One line for ``pytest-carbon sandbox``."""
        if self.missing:
            return f"{self.language}: unavailable ({self.missing})"
        shown = ", ".join(self.mounts) if self.mounts else "the system directories only"
        return f"{self.language}: {self.tool}; read-only mounts: {shown}"


def canonical(language: str) -> str | None:
    """The language's name in :data:`LANGUAGES`, or None when it is not one."""
    name = ALIASES.get(language.strip().lower(), language.strip().lower())
    return name if name in LANGUAGES else None


def _env_name(language: str) -> str:
    return f"PYTEST_CARBON_{language.upper()}"


def _find(language: str, extra_path: str = "") -> tuple[str | None, str]:
    """(the tool's path, or None; how it was looked for)."""
    configured = os.environ.get(_env_name(language))
    if configured:
        ok = os.path.isfile(configured) and os.access(configured, os.X_OK)
        return (configured if ok else None), f"{_env_name(language)}={configured}"
    if language == "python":
        return sys.executable, "this interpreter"
    path = SEARCH_PATH + (":" + extra_path if extra_path else "")
    return shutil.which(TOOLS[language], path=path), f"{TOOLS[language]} in {path}"


def _outside_system(path: str) -> bool:
    from pytest_carbon.sandbox.isolation import SYSTEM_DIRS

    real = os.path.realpath(path)
    for d in SYSTEM_DIRS:
        top = os.path.realpath(d)
        if real == top or real.startswith(top.rstrip("/") + "/"):
            return False
    return True


def _prefix_mounts(tool: str) -> list[str]:
    """The tool's installation prefix (``/opt/gcc-13`` for ``/opt/gcc-13/bin/g++``) where
    it lies outside the system directories."""
    real = os.path.realpath(tool)
    prefix = os.path.dirname(os.path.dirname(real))
    return [prefix] if _outside_system(real) and prefix != "/" else []


def toolchain(language: str) -> Toolchain:
    """The toolchain of ``language`` on this machine (looked up once per process and
    value of ``PYTEST_CARBON_<LANGUAGE>``). ValueError for an unknown language."""
    name = canonical(language)
    if name is None:
        raise ValueError(f"unknown language {language!r}; expected one of {', '.join(LANGUAGES)}")
    return _toolchain(name, os.environ.get(_env_name(name)))


@functools.cache
def _toolchain(name: str, _configured: str | None) -> Toolchain:
    source = SOURCES[name]
    if name == "rust":
        home = os.path.expanduser("~/.cargo/bin")
        tool, how = _find(name, home)
    else:
        tool, how = _find(name)
    if tool is None:
        return Toolchain(name, source, None, (), missing=f"no {TOOLS[name]} found ({how})")
    real = os.path.realpath(tool)
    if name == "python":
        return Toolchain(name, source, None, (tool, "-I", "-B", source), tool=tool)
    if name == "javascript":
        return Toolchain(name, source, None, (real, source), tuple(_prefix_mounts(real)), tool=real)
    if name in ("cpp", "c"):
        flags = CXX_FLAGS if name == "cpp" else C_FLAGS
        libs = () if name == "cpp" else ("-lm",)
        mounts = [d for d in ("/usr/include", "/usr/local/include") if os.path.isdir(d)]
        mounts += _prefix_mounts(real)
        argv = (real, *flags, "-o", "main", source, *libs)
        return Toolchain(name, source, argv, ("./main",), tuple(mounts), tool=real)
    if name == "rust":
        return _rust(source, tool)
    return _java(source, real)


def _rust(source: str, tool: str) -> Toolchain:
    """rustc: ``~/.cargo/bin/rustc`` is rustup's proxy, which reads ``~/.rustup``; the
    real compiler is in the sysroot it reports, which alone is shown to the sandbox."""
    try:
        out = subprocess.run(
            [tool, "--print", "sysroot"], capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Toolchain("rust", source, None, (), missing=f"{tool} --print sysroot: {exc}")
    sysroot = out.stdout.strip()
    real = os.path.join(sysroot, "bin", "rustc")
    if not os.access(real, os.X_OK):
        return Toolchain("rust", source, None, (), missing=f"no rustc in the sysroot {sysroot}")
    cc = shutil.which("cc", path=SEARCH_PATH)
    if cc is None:
        return Toolchain("rust", source, None, (), missing="rustc links with cc: none found")
    # cc is an alternatives link (/etc/alternatives is not in the sandbox): its target.
    linker = os.path.realpath(cc)
    argv = (real, *RUST_FLAGS, "-C", f"linker={linker}", "-o", "main", source)
    mounts = (sysroot,) if _outside_system(sysroot) else ()
    return Toolchain("rust", source, argv, ("./main",), mounts, tool=real)


def _java(source: str, javac: str) -> Toolchain:
    """javac and java of one JDK (``JAVA_HOME`` = javac's ``../..``), shown with the
    directories its configuration links point to (Debian's ``/etc/java-17-openjdk``)."""
    home = os.path.dirname(os.path.dirname(javac))
    java = os.path.join(home, "bin", "java")
    if not os.access(java, os.X_OK):
        return Toolchain("java", source, None, (), missing=f"no java beside {javac}")
    mounts = {home} if _outside_system(home) else set()
    for sub in ("conf", "lib"):
        for root, _dirs, files in os.walk(os.path.join(home, sub)):
            for name in files:
                path = os.path.join(root, name)
                if os.path.islink(path):
                    target = os.path.dirname(os.path.realpath(path))
                    if _outside_system(target) and not target.startswith(home + "/"):
                        mounts.add(target)
    tops = sorted(mounts)
    mounts = {m for m in tops if not any(m.startswith(t + "/") for t in tops)}
    compile_argv = (javac, *(f"-J{f}" for f in JVM_FLAGS), "-encoding", "UTF-8", source)
    run = (java, *JVM_FLAGS, "-cp", ".", "Main")
    return Toolchain("java", source, compile_argv, run, tuple(sorted(mounts)), tool=javac)


def toolchains() -> list[Toolchain]:
    """Every language's toolchain on this machine (for ``pytest-carbon sandbox``)."""
    return [toolchain(name) for name in LANGUAGES]
