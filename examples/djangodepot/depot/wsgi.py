"""WSGI entry point: `gunicorn depot.wsgi` (gunicorn looks up `application`)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "depot.settings")

application = get_wsgi_application()
