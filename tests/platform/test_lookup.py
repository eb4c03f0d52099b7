"""The one lookup of a project's row by name (`find_named`), as models, deployments, datasets and
continual policies use it: the row, a 404 naming what is missing where, a bad name refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from modelworks.errors import UserError
from modelworks.platform import continual, datasets, deployments, registry
from modelworks.platform.bootstrap import prepare
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import Project, RegisteredModel, User
from modelworks.platform.errors import NotFound
from modelworks.platform.settings import Settings


def test_each_kind_is_found_in_its_project_or_named_in_a_404(tmp_path: Path):
    settings = Settings.from_env({}, home=tmp_path, database_url=f"sqlite:///{tmp_path / 'mw.db'}", port=0)
    prepare(settings)
    engine = make_engine(settings.database_url)
    with session_factory(engine)() as session:
        admin = session.scalar(select(User))
        shop, other = Project(name="shop", created_by_id=admin.id), Project(name="other", created_by_id=admin.id)
        session.add_all([shop, other])
        session.flush()
        session.add(RegisteredModel(project_id=shop.id, name="m"))
        session.commit()
        assert registry.get_model(session, shop, "m")[0].name == "m"
        lookups = {
            "model": lambda p, n: registry.get_model(session, p, n),
            "deployment": lambda p, n: deployments.get_deployment(session, p, n),
            "dataset": lambda p, n: datasets.get_dataset(session, p, n),
            "policy": lambda p, n: continual.get_policy(session, p, n),
        }
        for kind, get in lookups.items():
            with pytest.raises(NotFound) as e:
                get(other if kind == "model" else shop, "m")  # "m" is shop's model, not other's
            assert str(e.value) == f"no {kind} named 'm' in project '{'other' if kind == 'model' else 'shop'}'"
            with pytest.raises(UserError, match=f"invalid {kind} name 'Bad/Name'"):
                get(shop, "Bad/Name")
    engine.dispose()
