"""The WSGI entry point: ``gunicorn wsgi:app``. Settings come from GOVERN_* and GOVERN_HOME."""

from govern import create_app

app = create_app()
