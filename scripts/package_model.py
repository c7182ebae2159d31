"""Make a training run's chosen checkpoint the packaged default, and measure what its model card states.

- ``views RUN``: validation PSNR/SSIM and speed with 1 to 4 test-time views (mirrored copies averaged), to
  choose the views on the validation split;
- ``package RUN``: copy ``RUN/best.keras`` (chosen on the validation split) to ``mirnet/weights/default.keras``
  (or ``--out``) and write its card from the run's own records (configuration, steps, hours, validation scores)
  plus GFLOPs; ``scripts/reproduce.py`` packages the recipe's last step this way;
- ``measure``: run once, when the model is chosen. eval15 in fp32 and bf16 (the same code as ``lowlight eval``,
  per-image JSON in ``docs/results/``), and seconds per 600x400 image in fp32 and bf16 of the packaged model and
  of the seed's network, measured in this one process; all of it goes into the card;
- ``table``: the per-image eval15 table that README and docs/MODEL.md show, from that JSON;
- ``fallback``: for a model that ships in bf16, the views its body runs on in fp32 (a CPU without bf16), with
  eval15 and the seconds per image of that fallback measured on such a CPU, into the card;
- ``inference``: ship the packaged weights with another precision, body views or refinement views (chosen on
  the validation split), as a new version: the network is rebuilt with those views (same weights, a new file), the
  card's version and description change, its eval15 and speed figures are dropped until ``measure`` runs again,
  and the version it came from is recorded.

Usage:
  python scripts/package_model.py views runs/recipe/01-body
  python scripts/package_model.py package runs/recipe/03-body-longer [--precision bf16] --version mirnet-lol-v3 \
      --description "..." --stage configs/recipe/01-body.json --stage configs/recipe/02-body-whole-images.json
  python scripts/package_model.py measure [--repeats 5]
  python scripts/package_model.py table [--gt-mean]
  python scripts/package_model.py fallback --fp32-views 3 [--fp32-refine-views 1] [--repeats 5]
  python scripts/package_model.py inference --precision bf16 --views 4 --refine-views 2 --version mirnet-lol-v21 \
      --description "..."
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from mirnet.choices import PRECISIONS, VIEW_COUNTS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "mirnet" / "weights"
EVAL15 = REPO.parent / "shared" / "data" / "lol" / "eval15"
RESULTS = REPO / "docs" / "results"
SAMPLE = REPO.parent / "shared" / "data" / "lol" / "sample" / "low" / "2.png"
SEED_ARGUMENTS = {"groups": 3, "blocks": 2, "channels": 64}
# LOL-v1 as every recipe step trains on it (data/lol-train: scripts/prepare_lol_train.sh).
TRAINING_DATA = "LOL-v1 our485 minus the 48 validation pairs of our485-val.txt (437 pairs); eval15 never used"


def _run_record(run: Path) -> dict:
    config = json.loads((run / "config.json").read_text())
    state = json.loads((run / "state.json").read_text())
    best = json.loads((run / "best.json").read_text())
    return {"config": config, "state": state, "best": best}


def _stage_figures(card: dict) -> list[dict]:
    """Steps and hours of every stage behind a packaged model, from its card: its earlier stages, then its own."""
    training = card["training"]
    earlier = [{"steps": stage["steps"], "hours": stage["hours"]} for stage in training.get("earlier_stages", [])]
    own_hours = training["hours_all_stages"] - sum(stage["hours"] for stage in earlier)
    return [*earlier, {"steps": training["total_steps"], "hours": round(own_hours, 2)}]


def _figures_from_cards(chain: list[dict]) -> list[dict]:
    """Steps and hours of the first stages of ``chain`` (stage configurations, each starting from the one before),
    as the nearest packaged card along it records them: the card beside the weights a stage started from, if those
    weights were packaged (a run's own best.json is not a card). Empty if no stage started from packaged weights."""
    for index in range(len(chain) - 1, 0, -1):
        card_path = REPO / Path(chain[index]["init_from"]).with_suffix(".json")
        card = json.loads(card_path.read_text()) if card_path.exists() else {}
        if "hours_all_stages" in card.get("training", {}):
            figures = _stage_figures(card)
            if len(figures) != index:
                raise SystemExit(f"{card_path} records {len(figures)} stages, --stage gave {index} before it")
            return figures
    return []


def earlier_stages(config: dict, stage_configs: list[Path]) -> list[dict]:
    """The stages before ``config``'s run, in order: the command of each (from ``stage_configs``) and its steps and
    hours. A stage's figures come from its run folder when that is here, else from the nearest card of packaged
    weights that a later stage started from (which recorded them when it was packaged). Each stage must start from
    the one before it."""
    stages = [json.loads(path.read_text()) for path in stage_configs]
    for before, after in zip([*stages, config], [*stages, config][1:], strict=False):
        expected = str(Path(before["out"]) / "best.keras")
        if after.get("init_from") != expected:
            raise SystemExit(f"a stage starts from {after.get('init_from')!r}, not from the stage before ({expected})")
    from_card = _figures_from_cards([*stages, config])
    records = []
    for index, (path, stage) in enumerate(zip(stage_configs, stages, strict=True)):
        state_file = REPO / stage["out"] / "state.json"
        if state_file.exists():
            state = json.loads(state_file.read_text())
            figures = {"steps": state["step"], "hours": round(state["seconds"] / 3600, 2)}
        elif index < len(from_card):
            figures = from_card[index]
        else:
            raise SystemExit(f"no steps and hours for {path}: neither {state_file} nor a packaged card has them")
        records.append({"command": f"lowlight train --config {path.relative_to(REPO)}", **figures})
    return records


def package(
    run: Path,
    version: str,
    description: str,
    earlier: list[dict],
    inference: dict[str, Any],
    out: Path = WEIGHTS / "default.keras",
    arguments: dict[str, Any] | None = None,
    train_config: str | None = None,
) -> dict[str, Any]:
    """Save ``run``'s best weights as ``out`` with a card from the run's records (``earlier``: the stages before it,
    :func:`earlier_stages`; ``inference``: the card's inference settings, e.g. its precision and fp32 fallback), in
    the network rebuilt with ``arguments`` over the run's (views and refine_views, which change how it runs and not
    its weights). ``train_config``: the committed config the run was made with (found under configs/ when not
    given). Returns the card."""
    from mirnet.architectures import build_model
    from mirnet.flops import gflops_per_image
    from mirnet.models import load_model, save_model

    record = _run_record(run)
    config, state, best = record["config"], record["state"], record["best"]
    loaded = load_model(run / "best.keras")
    arguments = {**loaded.arguments, **(arguments or {})}
    model = build_model(loaded.architecture, **arguments)
    model.set_weights(loaded.model.get_weights())
    gflops = gflops_per_image(model, loaded.architecture, arguments)
    hours_before = sum(stage["hours"] for stage in earlier)
    train_config = train_config or _committed_config(config)
    card = {
        "version": version,
        "description": description,
        "architecture": loaded.architecture,
        "arguments": arguments,
        "gflops_per_600x400": round(gflops, 2),
        "training": {
            **best["training"],
            "init_from": config.get("init_from"),  # as the committed config names it
            "config": train_config,
            "command": f"lowlight train --config {train_config}",
            "earlier_stages": earlier,
            "total_steps": state["step"],
            "hours": round(best["training"]["seconds"] / 3600, 2),
            "hours_all_stages": round(hours_before + state["seconds"] / 3600, 2),
            "data": TRAINING_DATA,
        },
        "validation": best["validation"],
        # Chosen on the validation split; the Enhancer runs what the card says.
        "inference": dict(inference),
    }
    save_model(model, out, card)
    if out == WEIGHTS / "default.keras":
        shutil.copyfile(run / "log.csv", RESULTS / f"{version}-training-log.csv")
    return json.loads(Path(out).with_suffix(".json").read_text())


def _committed_config(config: dict) -> str:
    """The committed file under configs/ that holds exactly this run's configuration."""
    for path in sorted((REPO / "configs").rglob("*.json")):
        if json.loads(path.read_text()) == config:
            return str(path.relative_to(REPO))
    raise SystemExit(f"no file under configs/ holds the configuration of the run {config['out']}; commit it first")


def _seed_network():
    """The seed report's network (untrained: only its time is measured), as a loaded model."""
    from mirnet.architectures import build_model
    from mirnet.models import LoadedModel

    model = build_model("mirnet-lite", **SEED_ARGUMENTS)
    return LoadedModel(model, {"architecture": "mirnet-lite", "arguments": SEED_ARGUMENTS}, "seed", "built")


def _seconds_per_image(loaded, precision: str, image, repeats: int, views: int | None = None) -> float:
    from mirnet.inference import Enhancer, best_seconds

    return best_seconds(Enhancer(loaded, precision=precision, tile=None, views=views), image, repeats)


def compare_views(run: Path) -> None:
    """Validation scores of each number of test-time views (validation only: this is how views are chosen)."""
    import numpy as np

    from mirnet.data import load_validation_pairs
    from mirnet.evaluation import evaluate_pairs
    from mirnet.imageio import load_rgb_uint8
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    config = json.loads((run / "config.json").read_text())
    validation = load_validation_pairs(REPO / config["data"], REPO / config["val_list"])
    loaded = load_model(run / "best.keras")
    image = load_rgb_uint8(str(SAMPLE)).astype(np.float32) / 255
    for views in VIEW_COUNTS:
        scores = evaluate_pairs(Enhancer(loaded, precision="fp32", tile=None, views=views), validation)
        seconds = _seconds_per_image(loaded, "fp32", image, 3, views)
        print(f"views {views}: val PSNR {scores.psnr:.3f} dB, SSIM {scores.ssim:.4f}, {seconds:.3f} s per 600x400")


def measure(repeats: int) -> None:
    import numpy as np

    from mirnet.architectures import resolve_arguments
    from mirnet.evaluation import evaluate_folder
    from mirnet.imageio import load_rgb_uint8
    from mirnet.inference import Enhancer
    from mirnet.models import load_model

    loaded = load_model()
    card_file = WEIGHTS / "default.json"
    card = json.loads(card_file.read_text())
    # The network's own views in both precisions (not an fp32 fallback's): bf16's cost is measured like for like.
    views = resolve_arguments(loaded.architecture, loaded.arguments).get("views")
    eval15 = {}
    for precision in ("fp32", "bf16"):
        scores = evaluate_folder(EVAL15, Enhancer(loaded, precision=precision, views=views))
        document = scores.report({"version": loaded.version, "precision": precision})
        suffix = "" if precision == "fp32" else "-bf16"
        (RESULTS / f"eval15-default{suffix}.json").write_text(json.dumps(document, indent=2) + "\n")
        eval15[precision] = document["mean"]
        print(precision, document["mean"])
    eval15["bf16_minus_fp32_psnr"] = eval15["bf16"]["psnr"] - eval15["fp32"]["psnr"]
    eval15["command"] = "lowlight eval --data ../shared/data/lol/eval15 [--precision bf16]"

    image = load_rgb_uint8(str(SAMPLE)).astype(np.float32) / 255
    seed = _seed_network()
    speed = {
        "fp32": _seconds_per_image(loaded, "fp32", image, repeats, views),
        "bf16": _seconds_per_image(loaded, "bf16", image, repeats, views),
        "seed_fp32": _seconds_per_image(seed, "fp32", image, repeats),
    }
    speed["fp32_vs_seed_fp32"] = speed["fp32"] / speed["seed_fp32"]
    speed["bf16_vs_seed_fp32"] = speed["bf16"] / speed["seed_fp32"]
    speed = {key: round(value, 4) for key, value in speed.items()}
    speed["command"] = f"python scripts/package_model.py measure --repeats {repeats} (best of {repeats}, one process)"
    print(speed)
    card["eval15"] = eval15
    card["seconds_per_600x400"] = speed
    card_file.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def fallback(fp32_views: int, repeats: int, fp32_refine_views: int | None = None) -> None:
    """Give the packaged model (which ships in bf16) ``fp32_views`` for when it runs in fp32, and measure that
    fallback here: eval15 in fp32 with those views (per-image JSON in ``docs/results/``) and seconds per 600x400
    image against the seed's network in fp32, in this one process. Run it on a CPU without bf16 instructions, where
    the fallback is what runs; the card's bf16 figures and its fp32 figures with the model's own views stay.
    ``fp32_refine_views``: for a network whose refinement runs on more than one of the body's views, how many it runs
    on in the fallback."""
    import numpy as np

    from mirnet.evaluation import evaluate_folder
    from mirnet.imageio import load_rgb_uint8
    from mirnet.inference import Enhancer, native_bf16
    from mirnet.models import load_model

    loaded = load_model()
    card = loaded.card  # the card as the Enhancer reads it; written back once, with the figures, at the end
    if card.get("inference", {}).get("precision") != "bf16":
        raise SystemExit("the packaged model does not ship in bf16: fp32 is what it runs, not a fallback")
    card["inference"]["fp32_views"] = fp32_views
    if fp32_refine_views is not None:
        card["inference"]["fp32_refine_views"] = fp32_refine_views
    enhancer = Enhancer(loaded, precision="fp32")
    assert enhancer.views == fp32_views, (enhancer.views, fp32_views)
    refine_views = {"refine_views": fp32_refine_views} if fp32_refine_views is not None else {}
    scores = evaluate_folder(EVAL15, enhancer)
    document = scores.report({"version": loaded.version, "precision": "fp32", "views": fp32_views})
    (RESULTS / "eval15-default-fp32-fallback.json").write_text(json.dumps(document, indent=2) + "\n")
    image = load_rgb_uint8(str(SAMPLE)).astype(np.float32) / 255
    seed = _seed_network()
    seconds = _seconds_per_image(loaded, "fp32", image, repeats)
    seed_seconds = _seconds_per_image(seed, "fp32", image, repeats)
    card["eval15"]["fp32_fallback"] = {**document["mean"], "views": fp32_views, **refine_views}
    refine_option = f" --fp32-refine-views {fp32_refine_views}" if fp32_refine_views is not None else ""
    card["seconds_per_600x400"]["fp32_fallback"] = {
        "views": fp32_views,
        **refine_views,
        "fp32": round(seconds, 4),
        "seed_fp32": round(seed_seconds, 4),
        "fp32_vs_seed_fp32": round(seconds / seed_seconds, 4),
        "native_bf16_here": native_bf16(),
        "machine": _cpu_name(),
        "command": f"python scripts/package_model.py fallback --fp32-views {fp32_views}{refine_option}"
        f" --repeats {repeats}",
    }
    (WEIGHTS / "default.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    measured = {"eval15": card["eval15"]["fp32_fallback"], "speed": card["seconds_per_600x400"]["fp32_fallback"]}
    print(json.dumps(measured, indent=2))


def reinfer(
    precision: str, version: str, description: str, views: int | None = None, refine_views: int | None = None
) -> None:
    """The packaged weights, unchanged, as ``version`` shipping in ``precision``; with ``views`` or
    ``refine_views``, in the network rebuilt to run its body on that many views and its refinement on that many of
    them (the same weights, a new file: its GFLOPs are measured again)."""
    from mirnet.architectures import build_model
    from mirnet.flops import gflops_per_image
    from mirnet.models import load_model, save_model

    packaged = load_model()
    card = dict(packaged.card)
    previous = {
        "version": card["version"],
        "inference": card.get("inference", {}),
        "sha256": card["sha256"],
        "arguments": dict(card["arguments"]),
    }
    for stale in ("eval15", "seconds_per_600x400"):
        card.pop(stale, None)
    changed = {key: value for key, value in (("views", views), ("refine_views", refine_views)) if value is not None}
    arguments = {**card["arguments"], **changed}
    model = build_model(card["architecture"], **arguments)
    model.set_weights(packaged.model.get_weights())
    card.update(
        version=version,
        description=description,
        arguments=arguments,
        inference={**card.get("inference", {}), "precision": precision},
        weights_from=previous,
        gflops_per_600x400=round(gflops_per_image(model, card["architecture"], arguments), 2),
    )
    save_model(model, WEIGHTS / "default.keras", card)
    shown = ("version", "inference", "weights_from", "arguments", "gflops_per_600x400")
    print(json.dumps({key: card[key] for key in shown}, indent=2))


def eval15_table(gt_mean: bool) -> str:
    """The per-image eval15 table of the packaged model as Markdown, from what ``measure`` wrote."""
    document = json.loads((RESULTS / "eval15-default.json").read_text())
    header = "| image | PSNR (dB) | SSIM |" + (" GT-mean PSNR (diagnostic) |" if gt_mean else "")
    lines = [header, "|---|---|---|" + ("---|" if gt_mean else "")]
    for image in document["images"]:
        extra = f" {image['gt_mean_psnr']:.2f} |" if gt_mean else ""
        lines.append(f"| {image['name']} | {image['psnr']:.2f} | {image['ssim']:.4f} |{extra}")
    mean = document["mean"]
    extra = f" {mean['gt_mean_psnr']:.2f} |" if gt_mean else ""
    lines.append(f"| **mean** | **{mean['psnr']:.2f}** | **{mean['ssim']:.4f}** |{extra}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    pack = commands.add_parser("package")
    pack.add_argument("run", type=Path)
    pack.add_argument("--version", required=True)
    pack.add_argument("--description", required=True)
    pack.add_argument("--stage", type=Path, action="append", default=[], help="config of an earlier stage")
    pack.add_argument("--precision", choices=list(PRECISIONS), default="fp32", help="the precision it ships in")
    pack.add_argument("--out", type=Path, default=WEIGHTS / "default.keras", help="where to write it")
    views = commands.add_parser("views", help="validation PSNR/SSIM and speed of 1-4 views of a run's best model")
    views.add_argument("run", type=Path)
    meas = commands.add_parser("measure")
    meas.add_argument("--repeats", type=int, default=5)
    table = commands.add_parser("table", help="the per-image eval15 table (Markdown) for README and docs/MODEL.md")
    table.add_argument("--gt-mean", action="store_true", help="add the GT-mean diagnostic column")
    infer = commands.add_parser("inference", help="the packaged weights with other views and precision")
    infer.add_argument("--views", type=int, choices=VIEW_COUNTS, help="the body on this many views")
    infer.add_argument("--precision", required=True, choices=list(PRECISIONS))
    infer.add_argument("--version", required=True)
    infer.add_argument("--description", required=True)
    infer.add_argument("--refine-views", type=int, choices=VIEW_COUNTS, help="the refinement on this many body views")
    fall = commands.add_parser("fallback", help="the views for fp32 (CPUs without bf16), measured here")
    fall.add_argument("--fp32-views", type=int, required=True, choices=VIEW_COUNTS)
    fall.add_argument("--repeats", type=int, default=5)
    fall.add_argument("--fp32-refine-views", type=int, choices=VIEW_COUNTS, help="the refinement's views in fp32")
    args = parser.parse_args()
    if args.command == "package":
        earlier = earlier_stages(_run_record(args.run)["config"], [stage.resolve() for stage in args.stage])
        card = package(args.run, args.version, args.description, earlier, {"precision": args.precision}, args.out)
        print(json.dumps(card, indent=2))
    elif args.command == "views":
        compare_views(args.run)
    elif args.command == "table":
        print(eval15_table(args.gt_mean))
    elif args.command == "fallback":
        fallback(args.fp32_views, args.repeats, args.fp32_refine_views)
    elif args.command == "inference":
        reinfer(args.precision, args.version, args.description, args.views, args.refine_views)
    else:
        measure(args.repeats)


if __name__ == "__main__":
    main()
