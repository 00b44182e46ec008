"""Data at rest: the Peewee models and store, the queries on the hot path, samples and rules."""

from data.pgdriver import import_peewee

import_peewee()  # before any module of this package imports peewee (see data.pgdriver)
