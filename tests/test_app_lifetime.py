"""An application nothing refers to any more is freed. FastAPI keeps every endpoint and
dependency it has inspected in module-level caches (thousands of entries), so an endpoint
that closes over its application keeps that application, its routes and its templates alive:
the test suite, which makes one application per test, grew to gigabytes and slowed down."""

import gc
import weakref

from app.config import Settings
from app.main import create_app


def test_a_dropped_application_is_freed(settings: Settings) -> None:
    app = create_app(settings)
    gone = weakref.ref(app)
    del app
    gc.collect()
    assert gone() is None
