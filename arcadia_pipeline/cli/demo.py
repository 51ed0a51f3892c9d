"""`arcadia-pipeline demo seed`: a reproducible demo inventory in the source tables;
`arcadia-pipeline demo delete-resource`: a back-dated deletion of one of its resources."""

from __future__ import annotations

from arcadia_pipeline.cli.output import CliError, add_day_option, iso_instant
from arcadia_pipeline.db.engine import make_engine
from arcadia_pipeline.settings import source_url


def cmd_demo_seed(args) -> None:
    from arcadia_pipeline.demo.seed import seed_demo

    try:
        with make_engine(source_url()).begin() as connection:
            summary = seed_demo(
                connection,
                deployments=args.deployments,
                days=args.days,
                seed=args.seed,
                end_date=args.end_date,
            )
    except ValueError as error:
        raise CliError(str(error)) from error
    print(
        f"seeded {summary.deployments} deployments ({summary.deployment_versions} versions: "
        f"{summary.sign_ups} signed up, {summary.churns} churned, "
        f"{summary.plan_changes} plan changes, {summary.renames} renames), "
        f"{summary.resources} resources ({summary.versions} versions, "
        f"{summary.unattributed_resources} never attributed) "
        f"from {summary.start:%Y-%m-%d} to {summary.end:%Y-%m-%d}"
    )


def cmd_demo_delete_resource(args) -> None:
    from arcadia_pipeline.demo.late_deletion import delete_resource_at, instant_text

    try:
        with make_engine(source_url()).begin() as connection:
            deletion = delete_resource_at(connection, args.resource_id, args.at)
    except ValueError as error:
        raise CliError(str(error)) from error
    print(
        f"{deletion.resource_id} deleted from {instant_text(deletion.at)} (its version from "
        f"{instant_text(deletion.ended_from)} ended, {deletion.removed} later removed)"
    )


def add_demo_commands(commands) -> None:
    demo = commands.add_parser("demo", help="demo data").add_subparsers(
        dest="demo_command", required=True
    )
    seed = demo.add_parser(
        "seed",
        help="create and fill the arcadia source tables (deployment and resource versions)",
    )
    seed.add_argument("--deployments", type=int, default=40)
    seed.add_argument("--days", type=int, default=75)
    seed.add_argument("--seed", type=int, default=7)
    add_day_option(seed, "--end-date", "last day of the history; default: today", default=None)
    seed.set_defaults(handler=cmd_demo_seed)
    delete = demo.add_parser(
        "delete-resource",
        help="record a back-dated deletion of a resource in the demo's source (a late "
        "correction: re-meter its days, then the closed month gets adjustments)",
        description="End RESOURCE_ID's version open at --at (valid_to = that instant, "
        "recorded_at = now) and remove its later versions, in one transaction. Only on a source "
        "demo seed created.",
    )
    delete.add_argument("resource_id", metavar="RESOURCE_ID", help="e.g. spaces:3132807")
    delete.add_argument(
        "--at",
        type=iso_instant,
        required=True,
        metavar="YYYY-MM-DDTHH:MM:SSZ",
        help="when the resource was deleted (UTC with Z, or with ±HH:MM); not in the future",
    )
    delete.set_defaults(handler=cmd_demo_delete_resource)
