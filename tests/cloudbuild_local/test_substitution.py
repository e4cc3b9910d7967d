"""Cloud Build's substitutions and the checks that fail a build before any step runs."""

import pytest

from tools.cloudbuild_local.substitution import SubstitutionError, Substitutions, parse_pairs

BUILT_IN = {
    "PROJECT_ID": "my-project",
    "BUILD_ID": "b-1",
    "PROJECT_NUMBER": "1",
    "LOCATION": "global",
}


def subs(defaults=None, given=None, loose=False):
    return Substitutions.for_build(BUILT_IN, defaults, given or {}, loose=loose)


def test_built_in_and_user_values_both_forms():
    s = subs({"_REPOSITORY": "ml-deploy"})
    text = "host/$PROJECT_ID/${_REPOSITORY}/img:$BUILD_ID"
    s.check([text])
    assert s.apply(text) == "host/my-project/ml-deploy/img:b-1"


def test_given_values_override_the_config_defaults():
    assert (
        subs({"_REPOSITORY": "ml-deploy"}, {"_REPOSITORY": "mine"}).apply("$_REPOSITORY") == "mine"
    )


def test_double_dollar_is_a_literal_dollar_for_bash():
    s = subs()
    s.check(["echo $$HOME and $${PATH}"])
    assert s.apply("echo $$HOME and $${PATH}") == "echo $HOME and ${PATH}"


def test_trigger_only_built_ins_are_empty_for_a_submitted_build():
    assert subs().apply("tag-$SHORT_SHA-$BRANCH_NAME") == "tag--"


def test_a_bash_variable_left_unescaped_fails_the_build():
    with pytest.raises(SubstitutionError, match=r'"HOME" is not a valid built-in substitution'):
        subs().check(["docker pull x || echo $HOME"])


def test_an_undefined_user_substitution_fails_the_build():
    with pytest.raises(SubstitutionError, match=r'"_REPO" is not matched in the substitution data'):
        subs({"_REPOSITORY": "x"}).check(["$_REPO $_REPOSITORY"])


def test_a_provided_user_substitution_nobody_uses_fails_the_build():
    with pytest.raises(SubstitutionError, match=r'"_UNUSED" in the substitution data'):
        subs(given={"_UNUSED": "x"}).check(["$PROJECT_ID"])


def test_allow_loose_lifts_the_checks_and_empties_unknown_keys():
    s = subs(given={"_UNUSED": "x"}, loose=True)
    s.check(["$_MISSING $HOME"])
    assert s.apply("[$_MISSING]") == "[]"


@pytest.mark.parametrize("key", ["REPOSITORY", "_repository", "_REPO-NAME"])
def test_user_keys_must_start_with_an_underscore_and_be_upper_case(key):
    with pytest.raises(SubstitutionError, match="not a valid user-defined substitution"):
        subs(given={key: "x"})


def test_substitutions_flag_pairs():
    assert parse_pairs("_A=x,_B=y=z") == {"_A": "x", "_B": "y=z"}
    with pytest.raises(SubstitutionError):
        parse_pairs("_A")
