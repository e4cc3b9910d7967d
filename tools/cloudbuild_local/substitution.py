"""Cloud Build's substitutions, with its checks (the default MUST_MATCH option).

- Built-in: $PROJECT_ID, $BUILD_ID, $PROJECT_NUMBER, $LOCATION, and those only
  a trigger fills ($COMMIT_SHA, $BRANCH_NAME, ...), empty for
  `gcloud builds submit`.
- User-defined: keys start with an underscore and use only upper-case letters,
  digits and underscores; the config's `substitutions` are defaults that
  `--substitutions` overrides.
- `$NAME` and `${NAME}` are replaced in the steps and in `images`; `$$` is a
  literal `$` (how a bash step keeps its own variables).
- A build fails when the template names a key that is neither built-in nor
  user-defined, or a user-defined key nobody provides, or when a provided
  user-defined key is never used; substitutionOption ALLOW_LOOSE lifts all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUILT_IN_PROVIDED = ("PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION")
BUILT_IN_TRIGGER_ONLY = (
    "TRIGGER_NAME",
    "COMMIT_SHA",
    "REVISION_ID",
    "SHORT_SHA",
    "REPO_NAME",
    "REPO_FULL_NAME",
    "BRANCH_NAME",
    "TAG_NAME",
    "REF_NAME",
    "TRIGGER_BUILD_CONFIG_PATH",
    "SERVICE_ACCOUNT_EMAIL",
    "SERVICE_ACCOUNT",
)
BUILT_IN = (*BUILT_IN_PROVIDED, *BUILT_IN_TRIGGER_ONLY)
USER_KEY = re.compile(r"_[A-Z0-9_]+")
# $$ first, so that an escaped dollar is never read as the start of a key.
_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class SubstitutionError(ValueError):
    """Cloud Build refuses the build before any step runs; the message is its own."""


@dataclass(frozen=True)
class Substitutions:
    values: dict[str, str]
    loose: bool = False

    @classmethod
    def for_build(
        cls,
        built_in: dict[str, str],
        defaults: dict[str, str] | None,
        given: dict[str, str],
        *,
        loose: bool = False,
    ) -> Substitutions:
        for key in [*(defaults or {}), *given]:
            if not USER_KEY.fullmatch(key):
                raise SubstitutionError(
                    f"invalid value for 'build.substitutions': key \"{key}\" is not a valid "
                    "user-defined substitution: it must start with _ and hold only A-Z, 0-9 "
                    "and _"
                )
        values = {key: "" for key in BUILT_IN_TRIGGER_ONLY}
        values.update(built_in)
        values.update({key: str(value) for key, value in (defaults or {}).items()})
        values.update(given)
        return cls(values, loose)

    def keys_used(self, texts: list[str]) -> set[str]:
        return {
            m.group(1) or m.group(2)
            for t in texts
            for m in _TOKEN.finditer(t)
            if m.group(0) != "$$"
        }

    def check(self, texts: list[str]) -> None:
        """Every key the template uses is provided, and every user key provided is used."""
        if self.loose:
            return
        used = self.keys_used(texts)
        for key in sorted(used):
            if key in self.values:
                continue
            if key.startswith("_"):
                raise SubstitutionError(
                    f"invalid value for 'build.substitutions': key in the template \"{key}\" is "
                    "not matched in the substitution data (define it under `substitutions:` or "
                    "pass it with --substitutions)"
                )
            raise SubstitutionError(
                f"invalid value for 'build.substitutions': key in the template \"{key}\" is not "
                "a valid built-in substitution (a bash variable? write $$" + key + ")"
            )
        for key in sorted(k for k in self.values if k.startswith("_") and k not in used):
            raise SubstitutionError(
                f"invalid value for 'build.substitutions': key \"{key}\" in the substitution "
                "data is not matched in the template"
            )

    def apply(self, text: str) -> str:
        def replace(match: re.Match) -> str:
            if match.group(0) == "$$":
                return "$"
            key = match.group(1) or match.group(2)
            if key in self.values:
                return self.values[key]
            return "" if self.loose else match.group(0)

        return _TOKEN.sub(replace, text)


def parse_pairs(text: str) -> dict[str, str]:
    """`--substitutions=_A=x,_B=y` as gcloud reads it."""
    pairs = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, separator, value = item.partition("=")
        if not separator:
            raise SubstitutionError(f"--substitutions: {item!r} is not KEY=VALUE")
        pairs[key.strip()] = value
    return pairs
