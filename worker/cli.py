"""The ``lowlight`` command with the platform's commands added to the model package's ones.

``mirnet`` never imports the platform, so the platform adds its subcommands to ``mirnet.cli``'s parser here:

    lowlight pairs import DIR [--holdout]     register a low/ + high/ folder of pairs (e.g. LOL)
    lowlight pairs list
    lowlight retrain --now [--steps N]        one retraining through the Celery task, in this process
    lowlight models list | promote VERSION | rollback VERSION
    lowlight models register FILE [--promote]   add a model file (its card beside it) as a candidate
    lowlight submit --server URL PHOTOS... -o OUT/   enhance on a running server, over HTTP only (web.submit)

Configuration comes from the environment (DATABASE_URL, STORAGE_BACKEND, ...), as for the web app and worker.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from mirnet import cli as model_cli
from web.submit import add_submit_parser

PLATFORM_COMMANDS = ("pairs", "retrain", "models", "submit")


def build_parser() -> argparse.ArgumentParser:
    parser = model_cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    pairs = commands.add_parser("pairs", help="training pairs collected for retraining")
    pair_commands = pairs.add_subparsers(dest="pairs_command", required=True)
    importing = pair_commands.add_parser("import", help="register a folder with low/ and high/")
    importing.add_argument("folder")
    importing.add_argument("--holdout", action="store_true", help="the fixed holdout set, never trained on")
    pair_commands.add_parser("list", help="list the pairs")

    retrain = commands.add_parser("retrain", help="fine-tune the active model on new pairs, then gate it")
    retrain.add_argument("--now", action="store_true", required=True, help="run one retraining immediately")
    retrain.add_argument("--steps", type=int, default=None, help="fine-tuning steps (default RETRAIN_STEPS)")

    models = commands.add_parser("models", help="the model registry")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    model_commands.add_parser("list", help="versions with their holdout scores and state")
    for name, text in (("promote", "make a candidate active"), ("rollback", "make an earlier version active")):
        model_commands.add_parser(name, help=text).add_argument("version")
    register = model_commands.add_parser("register", help="add a .keras file and its card as a candidate")
    register.add_argument("file", help="e.g. mirnet/weights/default.keras after an upgrade")
    register.add_argument("--promote", action="store_true", help="make it the active version at once")
    add_submit_parser(commands)
    return parser


def _platform() -> tuple[Any, Any, Any]:
    from web.core.db import make_session_factory, require_current_schema
    from web.core.settings import Settings
    from web.core.storage import build_storage

    settings = Settings.from_env()
    require_current_schema(settings.database_url)
    return settings, make_session_factory(settings), build_storage(settings)


def run_pairs(args: argparse.Namespace) -> int:
    from web.core.registry import pairs as pair_service

    settings, sessions, storage = _platform()
    with sessions() as session:
        if args.pairs_command == "import":
            created, duplicates = pair_service.import_folder(session, storage, settings, args.folder, args.holdout)
            held = sum(1 for pair in created if pair.is_holdout)
            print(f"{len(created)} new pairs ({held} holdout), {duplicates} already known")
            print(f"{pair_service.count_new(session)} pairs not trained on yet", file=sys.stderr)
            return 0
        for pair in pair_service.list_pairs(session):
            role = f"holdout ({pair.holdout_reason})" if pair.is_holdout else f"run {pair.first_run_id or 'new'}"
            print(f"{pair.id:>5}  {pair.origin:<6} {pair.width}x{pair.height}  {role:<16} {pair.source}")
    return 0


def run_retrain(args: argparse.Namespace) -> int:
    from worker.celery_app import make_celery
    from worker.retraining_tasks import RETRAIN_TASK

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    settings, _, _ = _platform()
    task = make_celery(settings).tasks[RETRAIN_TASK]
    outcome = task.apply(kwargs={"trigger": "cli", "steps": args.steps}, throw=True).get()
    print(f"run {outcome['run']}: {outcome['status']}; {outcome.get('decision') or 'no decision'}: {outcome['reason']}")
    return 0 if outcome["status"] in ("succeeded", "skipped") else 1


def run_models(args: argparse.Namespace) -> int:
    from web.core.registry import services as registry

    _, sessions, storage = _platform()
    with sessions() as session:
        if args.models_command == "register":
            row = registry.register_file(session, storage, args.file)
            if args.promote and row.state == registry.CANDIDATE:
                row = registry.promote(session, row.version, reason=f"registered from {args.file} and promoted")
        elif args.models_command == "promote":
            row = registry.promote(session, args.version)
        elif args.models_command == "rollback":
            row = registry.rollback(session, args.version)
        else:
            for row in registry.list_versions(session):
                psnr = f"{row.holdout_psnr:.2f} dB" if row.holdout_psnr is not None else "-"
                ssim = f"{row.holdout_ssim:.4f}" if row.holdout_ssim is not None else "-"
                print(f"{row.version:<24} {row.state:<10} PSNR {psnr:<10} SSIM {ssim:<7} {row.reason or ''}")
            return 0
        print(f"{row.version} is now {row.state}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command not in PLATFORM_COMMANDS:
        return model_cli.main(argv)
    if args.command == "submit":  # a client of the HTTP API: no database, storage or TensorFlow
        from web.submit import run_submit

        return run_submit(args)
    from web.core.db import SchemaNotCurrent
    from web.core.errors import DomainError
    from web.core.registry.pairs import PairRejected

    handlers = {"pairs": run_pairs, "retrain": run_retrain, "models": run_models}
    try:
        return handlers[args.command](args)
    except (DomainError, PairRejected, FileNotFoundError, SchemaNotCurrent) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
