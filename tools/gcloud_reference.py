"""Vendor what gcloud checks offline into autograder/data/, so grading never needs gcloud.

    python -m tools.gcloud_reference [--out autograder/data]

Run it after a gcloud update, with the Cloud SDK installed (it runs in gcloud's
own Python and reads gcloud's own definitions; it takes minutes):

gcloud_cli.json     the commands students' scripts run: each command's flags (which
                    take a value, their choices and kinds), positional arguments and
                    mutually exclusive groups, the subcommands of each group, and
                    gcloud's global flags; from calliope's CLI tree, hidden flags
                    included (`--platform` is hidden, and students use it)
cloudbuild_build.json  the Cloud Build `Build` message: every field, its type,
                    enums and nested messages; from the apitools messages that
                    `gcloud builds submit --config` decodes a config with

autograder/gcloud_cli.py and autograder/cloudbuild_schema.py check students'
files against them; tests/autograder/test_parity.py (marker gcloud) checks that
they agree with the installed gcloud.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Command groups students' scripts use, in the release tracks they use (alpha is rare
# and its commands change often: commands outside the table are not concluded on).
GROUPS = ("run", "builds", "config", "projects", "artifacts", "services", "auth", "iam")
TRACKS = ("", "beta")

_IN_GCLOUD = r"""
import json, sys
from googlecloudsdk import gcloud_main
from googlecloudsdk.calliope import cli_tree
from googlecloudsdk.core.resource import resource_projector
from googlecloudsdk.generated_clients.apis.cloudbuild.v1 import cloudbuild_v1_messages as m
from apitools.base.protorpclite import messages as pm

groups, tracks = sys.argv[1].split(","), sys.argv[2].split(",")
restrict = ["gcloud." + ".".join(filter(None, [t, g])) for t in tracks for g in groups]
cli = gcloud_main.CreateCLI([])
tree = cli_tree.CliTreeGenerator(cli).Walk(hidden=True, restrict=restrict)
cli_data = resource_projector.MakeSerializable(tree)

def kind(field):
    if isinstance(field, pm.MessageField):
        return "message"
    if isinstance(field, pm.EnumField):
        return "enum"
    return {pm.StringField: "string", pm.BooleanField: "bool", pm.IntegerField: "int",
            pm.FloatField: "float", pm.BytesField: "bytes"}.get(type(field), type(field).__name__)

messages = {}
def walk(cls):
    # Qualified: every map's entry is named AdditionalProperty, each with its own value type.
    name = cls.__qualname__
    if name in messages:
        return
    fields = {}
    messages[name] = fields
    for field in cls.all_fields():
        spec = {"kind": kind(field), "repeated": bool(field.repeated)}
        if spec["kind"] == "message":
            spec["message"] = field.message_type.__qualname__
            walk(field.message_type)
        if spec["kind"] == "enum":
            spec["values"] = sorted(field.type.names())
        fields[field.name] = spec
walk(m.Build)
json.dump({"cli": cli_data, "messages": messages}, sys.stdout)
"""


def _flag(spec: dict) -> dict:
    flag = {"value": spec.get("type") != "bool"}
    if spec.get("choices"):
        flag["choices"] = sorted(str(c) for c in spec["choices"])
    if spec.get("type") in ("dict", "list", "int", "float"):
        flag["type"] = spec["type"]
    elif "ArgDuration" in str(spec.get("type")) or spec["name"] == "--timeout":
        flag["type"] = "duration"
    if spec.get("alternative_names"):
        flag["aliases"] = sorted(spec["alternative_names"])
    return flag


def _mutex_groups(constraints: dict) -> list[list[list[str]]]:
    """Groups gcloud accepts at most one member of: each member one flag, or a nested
    group of flags that may go together (--remove-env-vars with --update-env-vars)."""
    found = []

    def names(argument: dict) -> list[str]:
        if argument.get("is_group"):
            return [n for a in argument.get("arguments", []) for n in names(a)]
        return [] if argument.get("is_positional") else [argument["name"]]

    def visit(group: dict) -> None:
        for argument in group.get("arguments", []):
            if argument.get("is_group"):
                visit(argument)
        members = [sorted(names(a)) for a in group.get("arguments", [])]
        members = [m for m in members if m]
        if group.get("is_mutex") and len(members) > 1:
            found.append(sorted(members))

    visit(constraints)
    return found


def _commands(node: dict, path: list[str], out: dict, groups: dict) -> None:
    children = node.get("commands", {})
    if node.get("is_group", bool(children)):
        groups[" ".join(path)] = sorted(children)
        for name, child in sorted(children.items()):
            _commands(child, [*path, name], out, groups)
        return
    out[" ".join(path)] = {
        "flags": {
            name: _flag(spec)
            for name, spec in sorted(node.get("flags", {}).items())
            if not spec.get("is_global")
        },
        "positionals": [
            {"name": p["name"], "nargs": p.get("nargs", "1")} for p in node.get("positionals", [])
        ],
        "mutex": _mutex_groups(node.get("constraints", {})),
    }


def generate(gcloud: str) -> tuple[dict, dict]:
    sdk = Path(gcloud).resolve().parents[1]
    python = os.environ.get("CLOUDSDK_PYTHON") or str(
        sdk / "platform" / "bundledpythonunix" / "bin" / "python3"
    )
    if not Path(python).is_file():
        python = shutil.which("python3") or sys.executable
    version = (sdk / "VERSION").read_text().strip()
    with tempfile.TemporaryDirectory() as config:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": config,
            "CLOUDSDK_CONFIG": config,
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
            "PYTHONPATH": f"{sdk / 'lib'}:{sdk / 'lib' / 'third_party'}",
        }
        result = subprocess.run(
            [python, "-c", _IN_GCLOUD, ",".join(GROUPS), ",".join(TRACKS)],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=True,
        )
    data = json.loads(result.stdout)
    commands: dict = {}
    groups: dict = {}
    root = data["cli"]
    for name, child in sorted(root.get("commands", {}).items()):
        if name in TRACKS:
            child = {
                **child,
                "commands": {k: v for k, v in child.get("commands", {}).items() if k in GROUPS},
            }
        elif name not in GROUPS:
            continue  # the walk's restriction matches prefixes (auth -> authz-toolkit)
        _commands(child, [name], commands, groups)
    global_flags = {
        name: _flag(spec)
        for name, spec in sorted(root.get("flags", {}).items())
        if not name.startswith("---")
    }
    cli = {
        "gcloud_version": version,
        "global_flags": global_flags,
        "groups": groups,
        "commands": commands,
    }
    build = {"gcloud_version": version, "root": "Build", "messages": data["messages"]}
    return cli, build


def _dump(data: dict) -> str:
    """JSON with one line per command or message: small, and readable in a diff."""
    lines = ["{"]
    keys = sorted(data)
    for index, key in enumerate(keys):
        value = data[key]
        end = "," if index < len(keys) - 1 else ""
        if isinstance(value, dict) and key in ("commands", "groups", "messages"):
            lines.append(f" {json.dumps(key)}: {{")
            names = sorted(value)
            for position, name in enumerate(names):
                comma = "," if position < len(names) - 1 else ""
                item = json.dumps(value[name], sort_keys=True)
                lines.append(f"  {json.dumps(name)}: {item}{comma}")
            lines.append(f" }}{end}")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{end}")
    return "\n".join(lines) + "\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gcloud_reference", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "autograder" / "data")
    parser.add_argument("--gcloud", default=shutil.which("gcloud"))
    args = parser.parse_args(argv)
    if not args.gcloud:
        parser.error("gcloud is not installed")
    cli, build = generate(args.gcloud)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in (("gcloud_cli.json", cli), ("cloudbuild_build.json", build)):
        (args.out / name).write_text(_dump(data))
    print(f"{len(cli['commands'])} commands, {len(build['messages'])} messages -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
