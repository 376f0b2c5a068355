"""scripts/setup on a cold machine, without building CPython for real.

The functions of scripts/setup run in bash with a local "Debian mirror"
(``file://`` URLs that curl reads), a tiny source tarball whose ``configure``
and a stub ``make`` install a fake interpreter. What is checked is the shell
logic that only a cold cache reaches: the build's clean-up trap, and which
Python is chosen.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup"
ORIG = "python3.13_3.13.5.orig.tar.xz"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("curl") is None,
    reason="needs bash and curl",
)

CONFIGURE = """#!/bin/sh
prefix=""
for arg in "$@"; do
  case "$arg" in --prefix=*) prefix="${arg#--prefix=}" ;; esac
done
printf '%s\\n' "$prefix" > prefix.txt
"""

# The functions of scripts/setup, then stubs for what needs root or a real
# build, then a caller standing in for ``main`` (the trap bug fired when the
# caller of build_python returned).
HARNESS = """
set -euo pipefail
functions='/^log()/p; /^python_ok()/,/^}}/p; /^find_python()/,/^}}/p'
eval "$(sed -n "$functions; /^build_python()/,/^}}/p" "$SETUP")"
ensure_build_deps() {{ :; }}
debian_mirror() {{ printf 'file://%s' "$MIRROR"; }}
make() {{
  if [ "${{1:-}}" = install ]; then
    mkdir -p "$(cat prefix.txt)/bin"
    printf '#!/bin/sh\\nexit 0\\n' > "$(cat prefix.txt)/bin/python3.13"
    chmod +x "$(cat prefix.txt)/bin/python3.13"
  fi
}}
caller() {{
  {body}
}}
caller
echo "caller returned"
"""


def _mirror(tmp_path: Path) -> Path:
    """A Debian mirror with the trixie source index and one orig tarball."""
    mirror = tmp_path / "mirror"
    if mirror.exists():
        return mirror
    pool = mirror / "pool/main/p/python3.13"
    pool.mkdir(parents=True)
    source = tmp_path / "Python-3.13.5"
    source.mkdir()
    configure = source / "configure"
    configure.write_text(CONFIGURE)
    configure.chmod(0o755)
    with tarfile.open(pool / ORIG, "w:xz") as tar:
        tar.add(source, arcname="Python-3.13.5")
    data = (pool / ORIG).read_bytes()
    index = (
        "Package: python3.13\n"
        "Directory: pool/main/p/python3.13\n"
        "Checksums-Sha256:\n"
        f" {hashlib.sha256(data).hexdigest()} {len(data)} {ORIG}\n"
        "\n"
        "Package: other\n"
        "Directory: pool/main/o/other\n"
    )
    dists = mirror / "dists/trixie/main/source"
    dists.mkdir(parents=True)
    (dists / "Sources.xz").write_bytes(lzma.compress(index.encode()))
    return mirror


def _run(
    tmp_path: Path, body: str, setup: Path = SETUP, **env: str
) -> subprocess.CompletedProcess[str]:
    scratch = tmp_path / "tmp"
    scratch.mkdir(exist_ok=True)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TMPDIR": str(scratch),
        "SETUP": str(setup),
        "MIRROR": str(_mirror(tmp_path)),
        "PREFIX": str(tmp_path / "cache/python3.13"),
        **env,
    }
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(  # noqa: S603 - our own script, fixed arguments
        [bash, "-c", HARNESS.format(body=body)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )


def test_cold_build_returns_cleanly(tmp_path: Path) -> None:
    """The clean-up trap fires once, inside build_python, and not in its caller.

    Before the fix the RETURN trap stayed set and ran again when ``main``
    returned, where ``work`` is unbound under ``set -u``: exit 1 after a
    successful build.
    """
    result = _run(tmp_path, "build_python; echo built")
    assert result.returncode == 0, result.stderr
    assert "unbound variable" not in result.stderr
    assert result.stdout.splitlines() == ["built", "caller returned"]
    assert (tmp_path / "cache/python3.13/bin/python3.13").exists()
    # The download and build directory is gone.
    assert list((tmp_path / "tmp").iterdir()) == []


def test_checksum_mismatch_fails_the_build(tmp_path: Path) -> None:
    """A tarball that does not match the index is refused (and cleaned up)."""
    mirror = _mirror(tmp_path)
    tarball = mirror / "pool/main/p/python3.13" / ORIG
    tarball.write_bytes(tarball.read_bytes() + b"tampered")
    result = _run(
        tmp_path,
        "build_python || { echo refused; return 0; }",
        MIRROR=str(mirror),
    )
    assert result.returncode == 0, result.stderr
    assert "checksum mismatch" in result.stderr
    assert result.stdout.splitlines()[-2:] == ["refused", "caller returned"]
    assert not (tmp_path / "cache/python3.13/bin/python3.13").exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def _fake_python_on_path(tmp_path: Path) -> str:
    """A ``python3.13`` on PATH that passes python_ok."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3.13"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    return f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def test_find_python_takes_one_from_path(tmp_path: Path) -> None:
    """Normally a suitable Python on PATH is used (no build)."""
    path = _fake_python_on_path(tmp_path)
    result = _run(tmp_path, "find_python", PATH=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == str(tmp_path / "bin/python3.13")


def test_force_build_ignores_path(tmp_path: Path) -> None:
    """BAMBU_FORCE_BUILD=1 (CI's cold pass) looks only in the cache."""
    path = _fake_python_on_path(tmp_path)
    result = _run(
        tmp_path,
        "if find_python; then echo found; else echo none; fi",
        PATH=path,
        BAMBU_FORCE_BUILD="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["none", "caller returned"]

    built = _run(
        tmp_path,
        "build_python >/dev/null; find_python",
        PATH=path,
        BAMBU_FORCE_BUILD="1",
    )
    assert built.returncode == 0, built.stderr
    assert built.stdout.splitlines()[0] == str(
        tmp_path / "cache/python3.13/bin/python3.13"
    )


def test_ci_runs_the_cold_bootstrap() -> None:
    """.ci/run builds from an empty cache, ignoring every Python on PATH."""
    script = (ROOT / ".ci/run").read_text()
    cold = script[: script.index("exec scripts/test")]
    for needle in (
        'BAMBU_PYTHON_CACHE="$cold/',
        'BAMBU_VENV="$cold/',
        "BAMBU_FORCE_BUILD=1",
        "scripts/setup",
        "import homeassistant",
        'rm -rf "$cold"',
    ):
        assert needle in cold, needle
