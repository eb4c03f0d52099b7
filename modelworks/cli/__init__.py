"""The `modelworks` (alias `mw`) command line, assembled from its parts:

    cli/engine.py    init, train, evaluate, predict, report, compare, tune, compress, export
    cli/serve.py     serve
    cli/platform.py  up, worker, db upgrade
    cli/remote.py    remote runs|jobs|logs|cancel|submit|upload|datasets|register|alias, and --remote
    cli/access.py    remote projects|members|users|tokens
    cli/serving.py   remote deploy|deployments|undeploy|keys|usage
    cli/continual.py remote continue|policies
    cli/streams.py   streams consume, remote append
    cli/options.py   --url / --project / --token, the same in every verb
    cli/output.py    consoles, user errors, the metric headline and --json
    cli/summaries.py what tune and export print

A verb that works on a platform server names it the same way everywhere: ``--url`` (env
MODELWORKS_URL), ``--project`` (env MODELWORKS_PROJECT) and ``--token`` (env MODELWORKS_TOKEN),
options, never positionals. The engine's verbs run here unless given the ``--remote`` flag, which
queues them as a job on that server and follows its log.
"""

from __future__ import annotations

import gc

import typer

from modelworks.cli import access, continual, engine, platform, remote, serve, serving, streams

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Build deep-learning models from one YAML file.",
    epilog="A platform server is named the same way in every verb: --url, --project, --token (or MODELWORKS_URL, "
    "MODELWORKS_PROJECT, MODELWORKS_TOKEN); train, evaluate, tune, compress and export use them only with --remote.",
)
for part in (engine.app, serve.app, platform.app):  # their verbs at the top level, as one app
    app.registered_commands += part.registered_commands
    app.registered_groups += part.registered_groups
access.add_to(remote.app)
serving.add_to(remote.app)
continual.add_to(remote.app)
streams.add_to(remote.app)
app.add_typer(streams.app, name="streams")
app.add_typer(remote.app, name="remote")


def main() -> None:
    """The console scripts' entry point: the app, then a quick exit."""
    try:
        app()
    finally:
        # Exit without the full garbage collection that interpreter shutdown runs over every object
        # alive (torch's and scikit-learn's modules): about 0.5 s of CPU after a training run on a
        # 2-core machine (issue 14). Objects are still released by reference counting, files closed.
        gc.freeze()
