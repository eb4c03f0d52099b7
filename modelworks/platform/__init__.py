"""The platform service's domain, without HTTP: settings, the database, and the operations on
users, API tokens, projects, memberships and the audit log.

The HTTP server (`modelworks.server`) and the command line call these functions; they never
import the server. Every operation takes an SQLAlchemy `Session`, commits its own unit of work
(the change and its audit record together) and raises `UserError` subclasses from
`modelworks.platform.errors` for anything the caller can fix.

=================  ===============================================================
module             holds
=================  ===============================================================
``settings``       `Settings` from MODELWORKS_* environment variables and flags
``db``             engine, typed models, Alembic migrations, pagination, a row by its name
``roles``          the project roles and their order
``users``          users
``tokens``         API tokens: issue, authenticate, list, revoke
``projects``       projects
``members``        project memberships
``access``         the one authorization decision for project-scoped actions
``audit``          who did what, when
``bootstrap``      first start: migrate, create the admin, issue its one-time token
=================  ===============================================================
"""
