"""Operations tests reuse the notice pipeline's fixtures (job context, scripted providers, agency)."""

from tests.govconnect.notices.conftest import (  # noqa: F401
    agency,
    app_client,
    auth,
    ctx,
    fake_providers,
    pipeline_settings,
)
