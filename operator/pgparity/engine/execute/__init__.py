"""Running a migration's statements: in the rolled-back transaction, rehearsed outside it on
clones, traced, and what ROLLBACK left behind measured."""
