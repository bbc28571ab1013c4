"""The Containerfile, read as a build would read it: what it copies, installs and runs stays in step with the project.

No container engine runs here, so the image is never built by the tests: these checks pin what can go stale
without one (a package added to pyproject.toml but not copied, a Debian package list that drifts from the one
scripts/bootstrap.sh installs, an entry point or version that changed).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEBS = "scripts/weasyprint-debs.txt"
Instruction = tuple[str, str]  # (keyword, arguments)


def instructions(text: str) -> list[Instruction]:
    """Containerfile instructions with continuation lines joined; comment lines dropped, also inside a
    continuation, as the builder does."""
    found: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if (not pending and not line.strip()) or line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Containerfile ends inside a continuation"
    return found


CONTAINERFILE = instructions((ROOT / "Containerfile").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def stages() -> list[list[Instruction]]:
    split: list[list[Instruction]] = []
    for keyword, arguments in CONTAINERFILE:
        if keyword == "FROM":
            split.append([])
        split[-1].append((keyword, arguments))
    return split


def copies(stage: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (not from another stage)."""
    found = []
    for keyword, arguments in stage:
        words = shlex.split(arguments)
        if keyword == "COPY" and not any(w.startswith("--from=") for w in words):
            *sources, destination = [w for w in words if not w.startswith("--")]
            found.append((sources, destination))
    return found


def shell_steps(command: str) -> list[list[str]]:
    """The simple commands of a shell command line (split at &&, || and |), each as its words."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars="&|")
    lexer.whitespace_split = True
    steps: list[list[str]] = [[]]
    for token in lexer:
        if token in {"&&", "||", "|"}:
            steps.append([])
        else:
            steps[-1].append(token)
    return steps


def listed_packages() -> list[str]:
    lines = (ROOT / DEBS).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_the_list_names_debian_packages_and_shell_filters_read_it_whole() -> None:
    packages = listed_packages()
    assert packages and len(set(packages)) == len(packages)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", p) for p in packages), packages  # Debian policy 5.6.1
    # the filter both scripts use, run by grep itself: it yields exactly the list
    pattern = "^[[:space:]]*(#|$)"
    read = subprocess.run(["grep", "-Ev", pattern, DEBS], cwd=ROOT, capture_output=True, text=True, check=True)
    assert read.stdout.split() == packages
    assert pattern in (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert pattern in (ROOT / "Containerfile").read_text()


def test_the_image_installs_the_debian_packages_bootstrap_installs_from_the_one_list() -> None:
    (final,) = stages()[-1:]
    destinations = [dest for sources, dest in copies(final) if sources == [DEBS]]
    assert len(destinations) == 1, f"the final stage copies {DEBS} once"
    installs = [arguments for keyword, arguments in final if keyword == "RUN" and "apt-get install" in arguments]
    assert len(installs) == 1
    # `grep ... <the copied list> | xargs apt-get install <flags>`: the packages come from the list only
    steps = shell_steps(installs[0])
    at = steps.index(next(step for step in steps if step[:3] == ["xargs", "apt-get", "install"]))
    assert steps[at - 1][0] == "grep" and steps[at - 1][-1] == destinations[0]
    assert all(word.startswith("-") for word in steps[at][3:]), steps[at]
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert re.search(r"mapfile -t weasyprint_debs < <\(grep .* " + re.escape(DEBS) + r"\)", bootstrap)
    assert 'apt_install "${weasyprint_debs[@]}"' in bootstrap
    for package in listed_packages():  # named nowhere else, so the list cannot be bypassed
        for name, text in (("bootstrap.sh", bootstrap), ("Containerfile", (ROOT / "Containerfile").read_text())):
            assert not re.search(rf"(?<![\w.-]){re.escape(package)}(?![\w.-])", text), f"{name} names {package}"


def test_the_build_copies_every_source_the_wheel_is_built_from() -> None:
    build = stages()[0]
    copied = {source.rstrip("/") for sources, _ in copies(build) for source in sources}
    assert all((ROOT / source).exists() for source in copied)
    settings = PYPROJECT["tool"]["setuptools"]
    package_dirs = settings.get("package-dir", {})
    roots = {package_dirs.get(p, p.replace(".", "/")).split("/")[0] for p in settings["packages"]}
    assert roots | {"pyproject.toml", PYPROJECT["project"]["readme"]} == copied
    assert any(k == "RUN" and re.search(r"pip wheel .*--no-deps .* \.$", a) for k, a in build), "pip wheel ."


def test_the_build_context_admits_exactly_what_is_copied() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    admitted = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore, "everything else stays out of the context (.venv, .git, reports)"
    copied = {source.rstrip("/") for stage in stages() for sources, _ in copies(stage) for source in sources}
    assert admitted == copied


def test_the_image_installs_the_wheel_without_extras_and_runs_the_console_script() -> None:
    final = stages()[-1]
    installs = [a for k, a in final if k == "RUN" and "pip install" in a]
    assert installs == ["pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels"], "no -e, no [test] extras"
    (entrypoint,) = [json.loads(a) for k, a in final if k == "ENTRYPOINT"]
    assert entrypoint == ["drauditor"] and "drauditor" in PYPROJECT["project"]["scripts"]


def test_the_image_runs_as_a_numeric_non_root_user_with_a_reports_volume() -> None:
    final = stages()[-1]
    (user,) = [a for k, a in final if k == "USER"]
    assert user.isdigit() and int(user) != 0, "numeric, so Kubernetes can verify runAsNonRoot"
    (volume,) = [json.loads(a) for k, a in final if k == "VOLUME"]
    assert volume == ["/reports"]
    assert any(k == "RUN" and f"chown {user}:0 /reports" in a for k, a in final)


def test_both_stages_use_the_python_and_debian_release_the_project_supports() -> None:
    bases = [a for k, a in CONTAINERFILE if k == "FROM"]
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert [b.split()[0] for b in bases] == ["docker.io/library/python:3.11-slim-bookworm"] * 2


def test_the_oci_labels_carry_the_project_version_and_licence() -> None:
    final = stages()[-1]
    (arg,) = [a for k, a in final if k == "ARG"]
    labels = dict(word.split("=", 1) for k, a in final if k == "LABEL" for word in shlex.split(a))
    version = arg.partition("=")[2]
    assert version == PYPROJECT["project"]["version"]
    assert labels["org.opencontainers.image.version"] == "${VERSION}" and arg.startswith("VERSION=")
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]["text"]
    assert labels["org.opencontainers.image.title"] == PYPROJECT["project"]["name"]
    assert labels["org.opencontainers.image.description"] == PYPROJECT["project"]["description"]
