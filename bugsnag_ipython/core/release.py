"""The default release: the app version a kernel's payloads carry when nothing names one. In order:
1. `git`: the repository holding the notebook, as `git describe --tags --always --dirty` names it;
   without a working `git` the repository is read (the tag on HEAD, else the abbreviated commit).
2. `image`: the image a hub started the server from: its tag, else its digest.
3. `ci`: the commit a CI runner names (`GITHUB_SHA`, `CI_COMMIT_SHA`, ...), abbreviated."""

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from .config import without_credentials

GIT, IMAGE, CI = "git", "image", "ci"
GIT_TIMEOUT = 5.0  # seconds: `--dirty` stats every tracked file of a large repository
ABBREV = 7
MAX_REF_BYTES = 4096  # a ref file holds one line; anything longer is not one
MAX_OBJECT_BYTES = 64 * 1024  # a tag object: a few header lines and a message

# The commit CI runners put in the environment, the commonest first.
CI_VARIABLES = (
    "GITHUB_SHA", "CI_COMMIT_SHA", "CIRCLE_SHA1", "BUILDKITE_COMMIT", "BITBUCKET_COMMIT",
    "TRAVIS_COMMIT", "CODEBUILD_RESOLVED_SOURCE_VERSION", "SOURCE_VERSION", "GIT_COMMIT",
)
_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1 or SHA-256 object names

# packed-refs: ref name -> (object, the commit it peels to when it is an annotated tag)
PackedRefs = dict[str, tuple[str, str | None]]


class Release(NamedTuple):
    """A release as found: its version, where it was found, and its source control facts."""

    version: str
    origin: str  # GIT, IMAGE or CI
    revision: str | None = None  # the full commit
    repository: str | None = None  # the first remote's URL, without credentials
    provider: str | None = None  # github, gitlab, bitbucket, where the host tells


def find_release(directory: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Release | None:
    """The default release for a notebook in `directory`, by the rules above; None if none."""
    if directory is not None and (found := git_release(directory)) is not None:
        return found
    for variable in ("JUPYTER_IMAGE_SPEC", "JUPYTER_IMAGE"):
        spec = env.get(variable, "").strip()
        if spec:
            return Release(image_version(spec), IMAGE)
    for variable in CI_VARIABLES:
        commit = env.get(variable, "").strip().lower()
        if _SHA.fullmatch(commit):
            return Release(commit[:ABBREV], CI, revision=commit)
    return None


def image_version(spec: str) -> str:
    """`registry:5000/team/image:tag@sha256:…` -> `tag`; without a tag, the digest, shortened."""
    name, _, digest = spec.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    if tag and (tag != "latest" or not digest):
        return tag
    if digest:
        algorithm, _, value = digest.partition(":")
        return f"{algorithm}:{value[:12]}" if value else digest
    return spec


def git_release(directory: str | os.PathLike[str]) -> Release | None:
    """The release of the repository holding `directory`, or None outside one."""
    found = _find_repository(directory)
    if found is None:
        return None
    top, git_dir, common = found
    packed = _packed_refs(common)
    revision = _head(git_dir, common, packed)
    if revision is None:
        return None  # a repository without a commit yet has no release
    version = _described(top) or _tag_of(common, packed, revision) or revision[:ABBREV]
    remote = _first_remote(common)
    host = (remote or "").lower()
    provider = next((name for name in ("github", "gitlab", "bitbucket") if name in host), None)
    return Release(version, GIT, revision, remote, provider)


def _find_repository(directory: str | os.PathLike[str]) -> tuple[Path, Path, Path] | None:
    """The work tree holding `directory`, its git folder and the one of the refs and config it shares."""
    try:
        here = Path(directory).expanduser().resolve()
        for top in (here, *here.parents):
            git_dir = top / ".git"
            if git_dir.is_file():  # a worktree or submodule: "gitdir: <path>"
                text = _small_text(git_dir)
                if not text.startswith("gitdir:"):
                    continue
                git_dir = (top / text[len("gitdir:"):].strip()).resolve()
            if (git_dir / "HEAD").is_file():
                common = git_dir / "commondir"
                shared = (git_dir / _small_text(common).strip()).resolve() if common.is_file() else git_dir
                return top, git_dir, shared
    except (OSError, RuntimeError):
        pass
    return None


def _described(top: Path) -> str | None:
    """What `git describe --tags --always --dirty` prints, or None without a working git."""
    import subprocess  # here, like every import of this lookup: it runs off the loading thread

    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            # No hook or fsmonitor of the repository's config runs: describe only reads.
            ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null",
             "describe", "--tags", "--always", "--dirty"],
            cwd=top, env=env, capture_output=True, timeout=GIT_TIMEOUT, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.decode("utf-8", "replace").strip()
    return text if done.returncode == 0 and text and "\n" not in text else None


def _head(git_dir: Path, common: Path, packed: PackedRefs) -> str | None:
    """The commit HEAD names: itself when detached, else its branch's file or packed ref."""
    try:
        text = _small_text(git_dir / "HEAD").strip()
        if text.startswith("ref:"):
            name = text[4:].strip()
            ref = common / name
            text = _small_text(ref).strip() if ref.is_file() else packed.get(name, ("",))[0]
    except OSError:
        return None
    return text if _SHA.fullmatch(text) else None


def _packed_refs(common: Path) -> PackedRefs:
    try:
        text = _small_text(common / "packed-refs", 16 * 1024 * 1024)
    except OSError:
        return {}
    refs: PackedRefs = {}
    last = None
    for line in text.splitlines():
        if line.startswith("^") and last is not None:
            refs[last] = (refs[last][0], line[1:].strip())
        elif line and not line.startswith("#"):
            sha, _, name = line.partition(" ")
            if _SHA.fullmatch(sha):
                last = name.strip()
                refs[last] = (sha, None)
    return refs


def _tag_of(common: Path, packed: PackedRefs, commit: str) -> str | None:
    """A tag on `commit` (the last in name order, as several may be), or None."""
    found = [name[len("refs/tags/"):] for name, (sha, peeled) in packed.items()
             if name.startswith("refs/tags/") and commit in (sha, peeled)]
    tags = common / "refs" / "tags"
    for path in sorted(tags.rglob("*")) if tags.is_dir() else []:
        try:
            sha = _small_text(path).strip()
        except OSError:
            continue
        if sha == commit or (_SHA.fullmatch(sha) and _peeled(common, sha) == commit):
            found.append(path.relative_to(tags).as_posix())
    return max(found) if found else None


def _peeled(common: Path, sha: str) -> str | None:
    """The object an annotated tag points at, when the tag is a loose object."""
    import zlib

    try:
        with open(common / "objects" / sha[:2] / sha[2:], "rb") as file:
            data = zlib.decompressobj().decompress(file.read(MAX_OBJECT_BYTES), 4096)
    except (OSError, zlib.error):
        return None
    header, _, body = data.partition(b"\0")
    if not header.startswith(b"tag ") or not body.startswith(b"object "):
        return None
    target = body[7:].split(b"\n", 1)[0].decode("ascii", "replace")
    return target if _SHA.fullmatch(target) else None


def _first_remote(common: Path) -> str | None:
    """The URL of the repository's first remote, credentials hidden."""
    import configparser

    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(_small_text(common / "config", 1024 * 1024))
    except (OSError, configparser.Error):
        return None
    for section in parser.sections():
        if section.startswith('remote "') and parser.has_option(section, "url"):
            url = parser.get(section, "url").strip()
            return without_credentials(url) if url else None
    return None


def _small_text(path: Path, limit: int = MAX_REF_BYTES) -> str:
    with open(path, "rb") as file:
        return file.read(limit).decode("utf-8", "replace")
