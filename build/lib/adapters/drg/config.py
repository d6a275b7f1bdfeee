"""Where the city DRG platform is and who the hospital is there. The Zhejiang specification is
not public, so host, credentials and any path that differs are configuration
(``JIANHU_DRG__BASE_URL``, ``JIANHU_DRG__APP_ID``, ``JIANHU_DRG__ORG_CODE``,
``JIANHU_DRG__PATHS``)."""

from pydantic import BaseModel, Field


class DrgConfig(BaseModel):
    base_url: str
    app_id: str
    org_code: str
    path_prefix: str = "/drgPms/nologin/drgUpload"
    # interface name ("baInfo/v1") -> the full path, where a deployment differs
    paths: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = 30.0

    def path(self, interface: str) -> str:
        return self.paths.get(interface, f"{self.path_prefix.rstrip('/')}/{interface}")
