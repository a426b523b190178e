"""Turn a failed weight download into one plain sentence."""

from __future__ import annotations

from zoolens.errors import ZoolensError

# Exception type names (anywhere in the cause chain) or message fragments that mean
# "the weights could not be fetched": no network, not in the local cache, hub offline.
_NETWORK_TYPES = {
    "LocalEntryNotFoundError",
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "URLError",
    "HTTPError",
    "OfflineModeIsEnabled",
    "gaierror",
    "ProxyError",
    "MaxRetryError",
    "NameResolutionError",
    "HfHubHTTPError",
    "ConnectError",
}
_NETWORK_WORDS = (
    "download",
    "connection",
    "network",
    "offline",
    "internet",
    "local cache",
    "name or service not known",
    "temporary failure in name resolution",
    "urlopen error",
    "timed out",
)


def is_download_error(exc: BaseException) -> bool:
    seen = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if any(t.__name__ in _NETWORK_TYPES for t in type(cur).__mro__):
            return True
        if any(w in str(cur).lower() for w in _NETWORK_WORDS):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def download_error(spec: str, exc: BaseException) -> ZoolensError:
    """The error for weights that could not be downloaded, with what to do about it."""
    first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ZoolensError(
        f"model {spec}: cannot download the pretrained weights (no network access, and they are "
        f"not in the local cache: {type(exc).__name__}: {first}); connect once to fill the cache "
        f"(HF_HOME / TORCH_HOME), or use --no-pretrained (pretrained = false) for random init"
    )


def build_or_explain(spec: str, pretrained: bool, kwargs: dict, build):
    """``build()``, with a bad ``kwargs`` TypeError and a failed download as one-line errors."""
    try:
        return build()
    except TypeError as exc:
        raise ZoolensError(f"model {spec}: bad kwargs {sorted(kwargs)} ({exc})") from None
    except Exception as exc:
        if pretrained and is_download_error(exc):
            raise download_error(spec, exc) from None
        raise
