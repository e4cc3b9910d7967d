"""`python -m bench.grading`: how long grading takes, for one submission and for a class.

Measures, each as the instructor runs it (a fresh process, wall-clock time):
  - one submission (`pytest autograder --submission X`), cold (an empty gcloud
    verdict cache) and warm (the cache the cold run filled), with the real
    gcloud and without it (--no-gcloud);
  - a class (`python -m autograder batch --jobs 2`), cold and warm, with and
    without gcloud. The class shares most files, as a real one does: most
    students hand in the reference solution's files with a mistake or two of
    their own, some the untouched templates, each with their own answers;
  - the similarity of the written answers of a class of 500 (in-process).

The class's submissions are built from solution/ and the self-tests' corpus
of mistakes (tests/autograder), so this needs the development install.
Results: bench/results/grading.json and grading.md (numbers for
docs/instructor-guide.md's "Grading speed").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("results")
QUESTIONS = ("Q2", "Q4", "Q5", "Q7", "Q8")
# Words an answer about this assignment draws on (so answers overlap as real ones do).
_TOPIC_WORDS = (
    "the base image layer cache build push registry region service scales cold start model "
    "session memory port request latency replica revision traffic container weights tag pull "
    "deploy frontend backend url health network timeout because so each when every user "
    "instance cloud run artifact dockerfile gunicorn worker thread torch choice server side "
    "state affinity gateway routes one per minimum instances keeps warm loads faster"
)
TOPIC = _TOPIC_WORDS.split()


def progress(message: str) -> None:
    print(f"[bench.grading {time.strftime('%H:%M:%S')}] {message}", flush=True)


def answers_text(rng: random.Random, student: int) -> str:
    lines = [f"Name: Student {student}", f"Student ID: 2025{student:04d}", ""]
    for question in QUESTIONS:
        words = [rng.choice(TOPIC) for _ in range(rng.randint(40, 160))]
        lines += [f"## {question}", "", " ".join(words) + ".", ""]
    return "\n".join(lines)


def build_class(folder: Path, size: int, seed: int = 7) -> dict[str, str]:
    """`size` submissions sharing most files; returns {name: what it holds}."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.autograder.builders import solution_files, template_files, write_submission
    from tests.autograder.test_mistakes import MISTAKES

    rng = random.Random(seed)
    mistakes = [m for m in MISTAKES if not m.gcloud and m.lost]
    kinds = {}
    for index in range(size):
        name = f"student-{index:03d}"
        if index % 10 == 0:
            files, kind = template_files(), "templates"
        elif index % 10 < 4:
            files, kind = solution_files(), "solution"
        else:
            mistake = mistakes[index % len(mistakes)]
            files, kind = mistake.files(), f"mistake: {mistake.name}"
        if kind != "templates":
            files["SHORT_ANSWER_TEMPLATE.md"] = answers_text(rng, index)
        write_submission(folder / name, files, "flat" if index % 3 == 0 else "repo")
        kinds[name] = kind
    return kinds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_submission(submission: Path, cache: Path, gcloud: bool) -> dict:
    """Wall-clock and CPU seconds of `pytest autograder` on one submission."""
    command = [
        sys.executable, "-m", "pytest", "autograder", "-q", "-p", "no:cacheprovider",
        "--submission", str(submission), "--oracle-cache", str(cache),
    ]  # fmt: skip
    if not gcloud:
        command.append("--no-gcloud")
    cpu, started = _children_cpu(), time.monotonic()
    # The grader exits 1 when a check fails: that is a result, not an error here.
    subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {
        "s": round(time.monotonic() - started, 1),
        "cpu_s": round(_children_cpu() - cpu, 1),
    }


def batch(class_dir: Path, out: Path, jobs: int, gcloud: bool) -> dict:
    """Wall-clock seconds of the batch, and the CPU seconds its grading processes report."""
    command = [
        sys.executable, "-m", "autograder", "batch", str(class_dir), "--jobs", str(jobs),
        "--csv", str(out / "grades.csv"), "--out", str(out), "--no-progress",
    ]  # fmt: skip
    if not gcloud:
        command.append("--no-gcloud")
    started = time.monotonic()
    subprocess.run(
        command, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wall = time.monotonic() - started
    saved = [json.loads(p.read_text()) for p in out.glob("submissions/*/outcome.json")]
    return {
        "s": round(wall),
        "cpu_s": round(sum(entry.get("cpu_seconds") or 0 for entry in saved)),
        "graded": sum(entry["status"] == "graded" for entry in saved),
    }


def similarity_of_a_class(size: int) -> dict:
    """Seconds to compare the written answers of `size` students (import counted apart)."""
    rng = random.Random(11)
    started = time.monotonic()
    import sklearn.feature_extraction.text  # noqa: F401 - timed apart: once per batch

    from autograder.similarity import similar_pairs

    import_s = time.monotonic() - started
    answers = {}
    for student in range(size):
        answers[f"s{student:03d}"] = {
            q: " ".join(rng.choice(TOPIC) for _ in range(rng.randint(40, 160))) for q in QUESTIONS
        }
    # Two pairs of students who copied, one with a few words changed.
    answers["s001"] = dict(answers["s000"])
    answers["s003"] = {q: a.replace("cache", "caches", 2) for q, a in answers["s002"].items()}
    started_cpu, started = time.process_time(), time.monotonic()
    pairs = similar_pairs(answers, list(QUESTIONS))
    return {
        "students": size,
        "seconds": round(time.monotonic() - started, 2),
        "cpu_seconds": round(time.process_time() - started_cpu, 2),
        "first_use_import_seconds": round(import_s, 2),
        "pairs_flagged": len(pairs),
        "copies_found": sorted({(a, b) for a, b, _, _ in pairs}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--similarity-size", type=int, default=500)
    parser.add_argument(
        "--skip", default="", help="any of: single,class,gcloud,similarity (comma-separated)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    modes = [False] if "gcloud" in skip else [True, False]
    load = os.getloadavg()
    results: dict = {"cores": len(os.sched_getaffinity(0)), "load_before": load[:2]}
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        work = Path(scratch)
        if "similarity" not in skip:
            progress(f"similarity of {args.similarity_size} students' answers")
            results["similarity"] = similarity_of_a_class(args.similarity_size)
        if "single" not in skip:
            build_class(work / "one", 2)
            submission = work / "one" / "student-001"  # the reference solution's files
            results["single"] = {}
            for gcloud in modes:
                cache = work / f"cache-single-{gcloud}"
                label = "gcloud" if gcloud else "no gcloud"
                progress(f"one submission, {label}: cold, then warm")
                results["single"][label] = {
                    "cold": one_submission(submission, cache, gcloud),
                    "warm": one_submission(submission, cache, gcloud),
                }
        if "class" not in skip:
            kinds = build_class(work / "class", args.class_size)
            results["class"] = {"size": args.class_size, "jobs": args.jobs, "runs": {}}
            results["class"]["solutions"] = sum(k == "solution" for k in kinds.values())
            for gcloud in modes:
                label = "gcloud" if gcloud else "no gcloud"
                out = work / f"out-{gcloud}"
                progress(f"a class of {args.class_size}, --jobs {args.jobs}, {label}: cold")
                cold = batch(work / "class", out, args.jobs, gcloud)
                progress(f"a class of {args.class_size}, {label}: warm ({cold['s']} s cold)")
                warm = batch(work / "class", out, args.jobs, gcloud)
                results["class"]["runs"][label] = {"cold": cold, "warm": warm}
                shutil.rmtree(out, ignore_errors=True)
    results["load_after"] = os.getloadavg()[:2]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "grading.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = render(results)
    (args.out / "grading.md").write_text(markdown)
    print(markdown)


def render(results: dict) -> str:
    cores = results["cores"]
    lines = [
        "# Grading speed",
        "",
        f"{cores} cores; load average before {results['load_before'][0]:.1f}, after "
        f"{results['load_after'][0]:.1f}. CPU is the grading processes' own and everything "
        f"they ran; CPU / {cores} is what the run would take on {cores} idle cores.",
        "",
    ]
    if "single" in results:
        lines += ["| one submission | cold | warm |", "|---|---:|---:|"]
        for label, run in results["single"].items():
            cells = [f"{run[k]['s']} s ({run[k]['cpu_s']} s CPU)" for k in ("cold", "warm")]
            lines.append(f"| {label} | {' | '.join(cells)} |")
        lines.append("")
    if "class" in results:
        size, jobs = results["class"]["size"], results["class"]["jobs"]
        lines += [f"| a class of {size}, --jobs {jobs} | cold | warm |", "|---|---:|---:|"]
        for label, run in results["class"]["runs"].items():
            cells = [
                f"{run[k]['s'] / 60:.1f} min ({run[k]['cpu_s']} s CPU: "
                f"{run[k]['cpu_s'] / cores / 60:.1f} min on {cores} idle cores)"
                for k in ("cold", "warm")
            ]
            lines.append(f"| {label} | {' | '.join(cells)} |")
        lines.append("")
    if "similarity" in results:
        sim = results["similarity"]
        lines.append(
            f"Similarity of {sim['students']} students' written answers: {sim['seconds']} s "
            f"({sim['cpu_seconds']} s CPU; scikit-learn's first import "
            f"{sim['first_use_import_seconds']} s more); {sim['pairs_flagged']} pairs flagged, "
            f"from the {len(sim['copies_found'])} planted copies."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
