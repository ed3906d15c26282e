"""Settings come from the environment once; bad values stop start-up naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from core.exceptions import ConfigurationError
from core.settings import Settings
from tests.certs import new_key, self_signed

T1 = "11111111-1111-1111-1111-111111111111"
T2 = "22222222-2222-2222-2222-222222222222"
T3 = "33333333-3333-3333-3333-333333333333"


class TestDefaults:
    """An empty environment gives DESIGN §3.3's defaults."""

    def test_defaults(self) -> None:
        s = Settings.from_env({})
        assert s.redis_url == "redis://localhost:6379/0"
        assert s.graph_base_url == "https://graph.microsoft.com/v1.0"
        assert s.graph_authority == "https://login.microsoftonline.com"
        assert s.sf_api_version == "62.0"
        assert s.max_body_bytes == 1024 * 1024
        assert s.graph_allowed_tenants == ()

    def test_allowed_tenants_default_to_the_tenant(self) -> None:
        s = Settings.from_env({"GRAPH_TENANT_ID": T1.upper()})
        assert s.graph_allowed_tenants == (T1,)
        s = Settings.from_env({"GRAPH_TENANT_ID": T1, "GRAPH_ALLOWED_TENANTS": f"{T2}, {T3}"})
        assert s.graph_allowed_tenants == (T2, T3)

    def test_internal_domains_lower_cased(self) -> None:
        s = Settings.from_env({"INTERNAL_DOMAINS": "Contoso.com, fabrikam.COM"})
        assert s.internal_domains == ("contoso.com", "fabrikam.com")


class TestBadValues:
    """Each malformed value raises ConfigurationError naming the variable."""

    @pytest.mark.parametrize(
        ("env", "variable"),
        [
            ({"REDIS_URL": "http://x"}, "REDIS_URL"),
            ({"REDIS_URL": "not a url"}, "REDIS_URL"),
            ({"GRAPH_BASE_URL": "http://graph.example.com/v1.0"}, "GRAPH_BASE_URL"),
            ({"GRAPH_AUTHORITY": "http://127.0.0.1:9"}, "GRAPH_AUTHORITY"),
            ({"INGEST_PUBLIC_URL": "http://public.example.com"}, "INGEST_PUBLIC_URL"),
            ({"SF_INSTANCE_URL": "ftp://x"}, "SF_INSTANCE_URL"),
            ({"SF_API_VERSION": "abc"}, "SF_API_VERSION"),
            ({"SF_API_VERSION": "40.0"}, "SF_API_VERSION"),
            ({"INGEST_MAX_BODY_BYTES": "lots"}, "INGEST_MAX_BODY_BYTES"),
            ({"INGEST_MAX_BODY_BYTES": "0"}, "INGEST_MAX_BODY_BYTES"),
            ({"INGEST_CA_BUNDLE": "/nonexistent/ca.pem"}, "INGEST_CA_BUNDLE"),
            ({"POLICY_FILE": "/nonexistent/policy.toml"}, "POLICY_FILE"),
            ({"INGEST_QUEUE": "a b"}, "INGEST_QUEUE"),
        ],
    )
    def test_named_in_the_error(self, env: dict[str, str], variable: str) -> None:
        with pytest.raises(ConfigurationError) as err:
            Settings.from_env(env)
        assert err.value.variable == variable
        assert str(err.value).startswith(variable)

    def test_rich_notifications_need_both_files(self, tmp_path: Path) -> None:
        cert = tmp_path / "cert.pem"
        cert.write_bytes(self_signed(new_key()).public_bytes(serialization.Encoding.PEM))
        with pytest.raises(ConfigurationError) as err:
            Settings.from_env({"GRAPH_ENCRYPTION_CERT_PATH": str(cert)})
        assert err.value.variable == "GRAPH_ENCRYPTION_KEY_PATH"

    def test_http_allowed_on_loopback_only(self) -> None:
        s = Settings.from_env({"INGEST_PUBLIC_URL": "http://127.0.0.1:8000"})
        assert s.public_url == "http://127.0.0.1:8000"


class TestRequirements:
    """Commands that need a setting say which one is missing."""

    def test_graph(self) -> None:
        with pytest.raises(ConfigurationError, match="GRAPH_TENANT_ID"):
            Settings().require_graph()
        with pytest.raises(ConfigurationError, match="GRAPH_CLIENT_SECRET"):
            Settings(graph_tenant_id="t", graph_client_id="c").require_graph()
        Settings(graph_tenant_id="t", graph_client_id="c", graph_client_secret="s").require_graph()

    def test_salesforce(self) -> None:
        with pytest.raises(ConfigurationError, match="SF_INSTANCE_URL"):
            Settings().require_salesforce()
        with pytest.raises(ConfigurationError, match="SF_CLIENT_SECRET"):
            Settings(sf_instance_url="https://x", sf_client_id="c").require_salesforce()

    def test_public_url_and_secret_key(self) -> None:
        with pytest.raises(ConfigurationError, match="INGEST_PUBLIC_URL"):
            Settings().require_public_url()
        with pytest.raises(ConfigurationError, match="INGEST_SECRET_KEY"):
            Settings(secret_key="short").require_secret_key()


class TestSecretsHidden:
    """Secrets appear neither in repr nor in the public view."""

    def test_repr_and_public(self) -> None:
        s = Settings(
            graph_client_secret="s3cr3t-graph",
            sf_client_secret="s3cr3t-sf",
            secret_key="s3cr3t-key-0123456789",
        )
        assert "s3cr3t" not in repr(s)
        public = s.public()
        assert "s3cr3t" not in str(public)
        assert public["graph_client_secret"] == "***"
