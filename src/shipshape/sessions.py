"""Signed-cookie sessions: Quart's cookie, signed and read at less cost per request.

Quart's :class:`~quart.sessions.SecureCookieSessionInterface` builds a new
``URLSafeTimedSerializer`` twice per request (to open the session and to save
it), and every build serialises a probe value to learn whether the
serializer speaks text. This interface keeps one serializer for as long as
``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` stay the same, and builds a new
one the moment either changes.

Why the serializer's insides are written here rather than used from
itsdangerous and Flask as they come: the example app writes a new session
(a CSRF secret) on a visitor's first request, and on every request from a
client that keeps no cookies. Back to back, stock Quart took 21 µs to write
that cookie and 20 µs to read it; this module takes 9 and 12. The SPA index,
which writes one per request, went from 162 to 135 µs
(``scripts/page_cost.py S3``, the minimum of alternating runs). Most of the
stock cost is work that never changes or does not pay:

- itsdangerous builds a new signer for every ``dumps`` and ``loads``, and
  derives the signing key from the secret (an HMAC over the salt) on every
  sign and every verify, once per key tried: 3.5 µs a cookie for a result
  that changes only with the keys. :class:`_SessionSigner` derives each key
  once, with the library's own ``derive_key``, and the serializer keeps one
  signer.
- ``URLSafeSerializerMixin.dump_payload`` runs ``zlib.compress`` on every
  payload and keeps the result only when it is shorter. zlib allocates about
  256 KiB of state and clears 64 KiB of it per call: 5-6 µs back to back,
  more in the app, whose heap often hands that memory back between
  requests. On a fresh session's 76 bytes of JSON it saves 3 bytes. Below
  :data:`ZLIB_FROM` bytes the payload is sent as it is (see there).
- Flask's tagged JSON goes through ``flask.json.dumps`` and ``loads``, which
  ask Flask's ``current_app`` first. Quart never binds it (its app context
  is its own context variable), so the proxy raises and catches an error on
  every call before falling back to ``json`` with Flask's ``default``; and
  ``json.dumps`` builds a new encoder for the compact separators.
  :class:`_TaggedJSON` calls the same encoder, built once, which takes about
  a third off the JSON step. A dict of plain strings (a fresh session) is
  written with the encoder's own string function: the encoder's per-call
  set-up cost twice the writing.
- The signature: itsdangerous sets up an HMAC object for the key on every
  signature and every check, and encodes the timestamp each time.
  :class:`_PaddedKey` hashes each key's padded blocks once (RFC 2104, as
  the standard library's own ``hmac`` does without OpenSSL), and the
  timestamp is encoded once a second.
- ``dump_cookie`` works out the same attributes for every session cookie:
  for one without an expiry, the text after the value is kept for as long as
  the cookie settings stay the same.

Counted with valgrind, writing a fresh session's cookie for the SPA index
went from 126,000 to 77,000 instructions with those last three.

The cookie is still Quart's: the same salt, key derivation, digest,
timestamp, tagged JSON and base64, so a cookie written here loads in stock
Quart with the same keys and the other way round, key rotation included.
Byte for byte it is stock's cookie, except that a payload under
:data:`ZLIB_FROM` bytes that zlib would have shortened goes out
uncompressed (itsdangerous reads both: a compressed payload is marked by a
leading ``.``). ``tests/shipshape/test_sessions.py`` checks all of it
against stock Quart.

:class:`CookieSessions` reads and writes the same cookie for ASGI layers that
answer before Quart runs.
"""

from __future__ import annotations

import binascii
import hmac
import json
import re
import zlib
from collections.abc import Hashable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from operator import attrgetter, itemgetter
from typing import Any

from flask.json.provider import DefaultJSONProvider
from flask.json.tag import TaggedJSONSerializer
from itsdangerous import BadSignature, Signer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, int_to_bytes, want_bytes
from itsdangerous.signer import HMACAlgorithm
from quart import Quart
from quart.sessions import SecureCookieSessionInterface
from werkzeug.http import dump_cookie
from werkzeug.sansio.http import parse_cookie  # Quart's own: lenient with bytes

#: A cookie value dump_cookie sends as it is (a signed session always is one:
#: URL-safe base64 and dots); any other value goes through dump_cookie whole.
_NO_QUOTE_RE = re.compile(r"[\w!#$%&'()*+\-./:<=>?@\[\]^`{|}~]*", re.ASCII)

#: dump_cookie's ``max_size``: a longer cookie gets its warning.
_COOKIE_WARN_SIZE = 4093

#: Payloads shorter than this many bytes of JSON are never offered to zlib.
#: Not because zlib cannot win below it (on repetitive input it wins from 13
#: bytes), but because what it wins is small and cheap to send. The sessions
#: this app writes are a CSRF secret (76 bytes, of which zlib saves 3, at
#: most 5: random hex shrinks only by Huffman coding) and a secret plus a
#: flashed message (117 bytes, at most 9 saved). No payload under this size
#: can save more than 118 bytes (zlib's smallest output is 9), on a cookie
#: far below the 4096 bytes a browser must keep (RFC 6265, section 6.1).
#: From this size on, zlib runs with itsdangerous' rule, so a big session is
#: compressed exactly as stock Quart compresses it.
ZLIB_FROM = 128

# flask.json.dumps without a Flask app context, which is the only way it
# runs under Quart: json.dumps with Flask's `default` and compact separators.
_ENCODER = json.JSONEncoder(separators=(",", ":"), default=DefaultJSONProvider.default)
_string = encode_basestring_ascii  # how _ENCODER writes a str

_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _base64(data: bytes) -> bytes:
    """itsdangerous' ``base64_encode`` of bytes (URL-safe, unpadded), without its three
    Python-level calls around binascii's: a session cookie makes three of these."""
    return binascii.b2a_base64(data, newline=False).translate(_URL_SAFE).rstrip(b"=")


#: The tags every TaggedJSONSerializer has; none of them tags a plain ``str``.
_DEFAULT_TAGS = frozenset(TaggedJSONSerializer.default_tags)


class _TaggedJSON:
    """Flask's tagged JSON for sessions, without ``flask.json``'s context lookup."""

    def __init__(self, tagged: TaggedJSONSerializer) -> None:
        self.tagged = tagged  # its tags, custom ones included, do the tagging
        self._tags_seen: tuple[int, bool] = (-1, False)

    def _plain_strings_untagged(self) -> bool:
        """With Flask's tags only, a dict of plain strings is its own tagged form (a fresh
        session, {"_csrf": "..."}): no walk through every tag's check. Worked out again
        when a tag is registered."""
        order = self.tagged.order
        seen = self._tags_seen
        if seen[0] != len(order):
            seen = self._tags_seen = (len(order), all(type(t) in _DEFAULT_TAGS for t in order))
        return seen[1]

    def dumps(self, value: Any) -> str:
        if type(value) is dict and self._plain_strings_untagged():
            # What the encoder writes for a dict of plain strings (ensure_ascii,
            # compact separators), without the encoder's per-call set-up, which
            # cost twice the writing.
            items = []
            for k, v in value.items():
                if type(k) is not str or type(v) is not str:
                    break
                items.append(_string(k) + ":" + _string(v))
            else:
                # A one-key dict whose key is a tag's is tagged itself (TagDict).
                if not (len(items) == 1 and next(iter(value)) in self.tagged.tags):
                    return "{" + ",".join(items) + "}"
        return _ENCODER.encode(self.tagged.tag(value))

    def loads(self, value: str) -> Any:
        return self._untag(json.loads(value))

    def _untag(self, value: Any) -> Any:
        # TaggedJSONSerializer._untag_scan, through its public `untag`.
        if isinstance(value, dict):
            return self.tagged.untag({k: self._untag(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._untag(item) for item in value]
        return value


class _SessionSigner(TimestampSigner):
    """itsdangerous' timestamp signer, with each key derived once instead of per signature."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The library's own derivation, so the keys (and signatures) are its own.
        self._derived = {key: TimestampSigner.derive_key(self, key) for key in self.secret_keys}
        # HMACAlgorithm.get_signature builds an HMAC object per signature; each
        # key's padded blocks are hashed once here instead. The newest key first,
        # as itsdangerous tries them; it is the one that signs.
        self._verifiers: tuple[_PaddedKey, ...] = ()
        # A digest named by a string (hmac.new takes one) keeps itsdangerous' own path.
        if type(self.algorithm) is HMACAlgorithm and callable(self.algorithm.digest_method):
            digest = self.algorithm.digest_method
            self._verifiers = tuple(
                _PaddedKey(self._derived[key], digest) for key in reversed(self.secret_keys)
            )
        self._stamp: tuple[int, bytes] = (-1, b"")  # this second's timestamp, encoded

    def sign(self, value: str | bytes) -> bytes:
        # TimestampSigner.sign, with the timestamp encoded once a second.
        value = want_bytes(value)
        now = self.get_timestamp()
        stamp = self._stamp
        if stamp[0] != now:
            stamp = self._stamp = (now, _base64(int_to_bytes(now)))
        sep = self.sep if type(self.sep) is bytes else want_bytes(self.sep)
        value = value + sep + stamp[1]
        return value + sep + self.get_signature(value)

    def get_signature(self, value: str | bytes) -> bytes:
        if not self._verifiers:
            return super().get_signature(value)
        return _base64(self._verifiers[0].digest(want_bytes(value)))

    def verify_signature(self, value: str | bytes, sig: str | bytes) -> bool:
        # Signer.verify_signature, with each key's padded blocks hashed once.
        if not self._verifiers:
            return super().verify_signature(value, sig)
        try:
            signature = base64_decode(sig)
        except Exception:
            return False
        message = want_bytes(value)
        return any(hmac.compare_digest(signature, key.digest(message)) for key in self._verifiers)

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
        derived = self._derived.get(key)
        return super().derive_key(key) if derived is None else derived


class _PaddedKey:
    """HMAC (RFC 2104) with one key, whose inner and outer padded blocks are hashed once.

    ``hmac.new(key, msg, digest).digest()`` makes the same bytes (a test checks
    it), but sets up OpenSSL's HMAC for the key each time: half the
    instructions of a session cookie's signature here (20,500 against 10,400
    with the hashed pads copied). This is the construction of the standard
    library's own ``hmac.HMAC`` when OpenSSL's is not available.
    """

    def __init__(self, key: bytes, digest: Any) -> None:
        block = digest().block_size
        if len(key) > block:
            key = digest(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = digest(key.translate(hmac.trans_36))
        self._outer = digest(key.translate(hmac.trans_5C))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        signature: bytes = outer.digest()
        return signature


class _SessionSerializer(URLSafeTimedSerializer):
    """Quart's session serializer with one signer, and zlib only for payloads worth it.

    The signer holds the keys and their derived forms and is never written
    after it is built, so every request (and thread) can share it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signer = super().make_signer()

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is None or want_bytes(salt) == self.salt:
            return self._signer
        return super().make_signer(salt)

    def dumps(self, obj: Any, salt: str | bytes | None = None) -> Any:
        # Serializer.dumps, with this serializer's own signer and payload (bytes) as they are.
        if salt is not None:
            return super().dumps(obj, salt)
        signed = self._signer.sign(self.dump_payload(obj))
        return signed.decode("utf-8") if self.is_text_serializer else signed

    def dump_payload(self, obj: Any) -> bytes:
        # Serializer.dump_payload (the JSON, before the URL-safe mixin), then the mixin's.
        data = want_bytes(self.serializer.dumps(obj, **self.serializer_kwargs))
        if len(data) >= ZLIB_FROM:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:  # URLSafeSerializerMixin's rule
                return b"." + _base64(compressed)
        return _base64(data)


class CachedSerializerSessionInterface(SecureCookieSessionInterface):
    """Quart's signed-cookie sessions, with the serializer built once per key set.

    Its signatures, salt and cookie format are Quart's (see the module's
    docstring for the one difference: small payloads are not compressed)::

        app.session_interface = CachedSerializerSessionInterface()
    """

    def __init__(self) -> None:
        self._cached: tuple[Hashable, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._cached
        if cached is not None and cached[0] == key:
            return cached[1]
        serializer = self._build_serializer(app)
        self._cached = (key, serializer)  # one assignment: safe across threads
        return serializer

    def _build_serializer(self, app: Quart) -> URLSafeTimedSerializer | None:
        # SecureCookieSessionInterface.get_signing_serializer, with this module's parts.
        if not app.secret_key:
            return None
        keys: list[str | bytes] = [*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key]
        serializer: Any = self.serializer
        if type(serializer) is TaggedJSONSerializer:  # a subclass keeps its own methods
            serializer = _TaggedJSON(serializer)
        return _SessionSerializer(
            keys,
            salt=self.salt,
            serializer=serializer,
            signer=_SessionSigner,
            signer_kwargs={
                "key_derivation": self.key_derivation,
                "digest_method": self.digest_method,
            },
        )


def install(app: Quart) -> None:
    """Use the cached interface unless the app chose a session interface of its own."""
    if type(app.session_interface) is SecureCookieSessionInterface:
        app.session_interface = CachedSerializerSessionInterface()


#: The settings that Quart's own cookie methods (``get_cookie_path`` and the others
#: ``set_cookie`` calls) and this module's serializer read: while they stay the
#: same, so does everything in a session cookie but its value.
_COOKIE_SETTINGS = itemgetter(
    "SESSION_COOKIE_PATH", "APPLICATION_ROOT", "SESSION_COOKIE_DOMAIN", "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "SESSION_COOKIE_PARTITIONED",
    "SECRET_KEY", "SECRET_KEY_FALLBACKS",
)  # fmt: skip
#: The interface's methods whose answers :class:`_CookieParts` stands for; one set on
#: the interface or its class (an app's or a test's) turns the parts off.
_COOKIE_METHODS = (
    "get_cookie_path", "get_cookie_domain", "get_cookie_secure", "get_cookie_httponly",
    "get_cookie_samesite", "get_cookie_partitioned", "get_expiration_time",
    "get_signing_serializer", "session_class",
)  # fmt: skip
_COOKIE_METHOD_NAMES = frozenset(_COOKIE_METHODS)
_methods_of = attrgetter(*_COOKIE_METHODS)
#: The cookie methods as this module and Quart define them, to tell a patched one.
_STOCK_METHODS = _methods_of(CachedSerializerSessionInterface)


@dataclass(frozen=True)
class _CookieParts:
    """A session cookie without an expiry, but for its value, for one set of settings."""

    #: _COOKIE_SETTINGS of the config they were made for; ``None`` for parts made by an
    #: app's own methods, which are kept for their suffix only (the settings do not say
    #: what those methods answer).
    settings: tuple[Any, ...] | None
    serializer: URLSafeTimedSerializer
    attributes: tuple[Any, ...]  # what the interface's methods answered
    prefix: bytes  # "name="
    suffix: bytes  # dump_cookie's text after the value, for those attributes


class CookieSessions:
    """The app's signed session cookie, read and written outside a request context.

    For ASGI layers that answer before Quart runs (the single-page index) but
    must share the session with the app: the same cookie name, flags, salt,
    signature and lifetime as Quart's own
    :class:`~quart.sessions.SecureCookieSessionInterface`, whose methods it calls::

        sessions = CookieSessions(app)
        data = sessions.load(cookie_header)
        set_cookie = sessions.set_cookie(data)  # the Set-Cookie value

    Writing a cookie asks the interface for its serializer, expiry, path,
    domain and flags, each a look-up in the config: 3 of the 6 µs of a fresh
    session's cookie back to back. With :class:`CachedSerializerSessionInterface`,
    whose methods read only the config, a session without an expiry is
    written from parts kept while :data:`_COOKIE_SETTINGS` stay the same: one
    look-up of those settings, the value signed, and the parts joined around
    it. The SPA index, which then wrote one per request, served 1.12× the
    requests a second (pinned, five interleaved rounds). Any other
    interface, a method replaced on the interface, a permanent session or a
    name that must be quoted is written the long way every time.
    """

    def __init__(self, app: Quart) -> None:
        interface = app.session_interface
        if not isinstance(interface, SecureCookieSessionInterface):
            raise RuntimeError(
                "the session is needed before Quart runs, which works with Quart's "
                "signed-cookie sessions only"
            )
        self.app = app
        self.interface = interface
        self.name = interface.get_cookie_name(app)
        self._parts: _CookieParts | None = None

    def load(self, cookie_header: str | None) -> dict[str, Any]:
        """The session in ``cookie_header`` (a request's ``Cookie``), or ``{}``."""
        if not cookie_header:
            return {}
        value = parse_cookie(cookie_header).get(self.name)
        serializer = self.interface.get_signing_serializer(self.app)
        if value is None or serializer is None:
            return {}
        max_age = int(self.app.permanent_session_lifetime.total_seconds())
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadSignature:
            return {}
        return dict(data) if isinstance(data, dict) else {}

    def set_cookie(self, data: dict[str, Any]) -> bytes:
        """The ``Set-Cookie`` value that stores ``data``, as Quart's ``save_session`` writes it."""
        return self.set_cookies([data])[0]

    def set_cookies(self, sessions: list[dict[str, Any]]) -> list[bytes]:
        """:meth:`set_cookie` of each, the settings read once for all of them (new
        sessions made together: ``shipshape.spa.fresh``)."""
        parts = self._parts
        if (
            parts is None
            or parts.settings != _COOKIE_SETTINGS(self.app.config)
            or not self._parts_apply()
        ):
            return [self._set_cookie(data) for data in sessions]
        dumps, prefix, suffix = parts.serializer.dumps, parts.prefix, parts.suffix
        cookies = []
        for data in sessions:
            # The serializer writes URL-safe base64 and dots only, which dump_cookie
            # sends as they are (_NO_QUOTE_RE).
            cookie = prefix + dumps(data).encode("ascii") + suffix
            if data.get("_permanent") or len(cookie) > _COOKIE_WARN_SIZE:
                # SecureCookieSession.permanent: an expiry; or dump_cookie's warning.
                cookie = self._set_cookie(data)
            cookies.append(cookie)
        return cookies

    def settings(self) -> tuple[Any, ...] | None:
        """What a new session's cookie depends on besides its data (the cookie settings and
        keys), or ``None`` when the interface's methods are the app's own: two cookies
        written under equal settings differ only in their data and timestamp."""
        return _COOKIE_SETTINGS(self.app.config) if self._parts_apply() else None

    def _parts_apply(self) -> bool:
        """Whether the interface's cookie methods are this module's and read only the config."""
        interface = self.interface
        return (
            type(interface) is CachedSerializerSessionInterface
            and _methods_of(CachedSerializerSessionInterface) == _STOCK_METHODS
            and _COOKIE_METHOD_NAMES.isdisjoint(vars(interface))
        )

    def _set_cookie(self, data: dict[str, Any]) -> bytes:
        """:meth:`set_cookie` the long way, through the interface's methods; keeps the
        parts of a cookie without an expiry for the next one."""
        app, interface = self.app, self.interface
        settings = _COOKIE_SETTINGS(app.config) if self._parts_apply() else None
        serializer = interface.get_signing_serializer(app)
        if serializer is None:  # pragma: no cover - Shipshape always sets SECRET_KEY
            raise RuntimeError("no SECRET_KEY to sign the session with")
        session = interface.session_class(data)
        expires = interface.get_expiration_time(app, session)
        attributes = (
            interface.get_cookie_path(app),
            interface.get_cookie_domain(app),
            interface.get_cookie_secure(app),
            interface.get_cookie_httponly(app),
            interface.get_cookie_samesite(app),
            interface.get_cookie_partitioned(app),
        )
        value = serializer.dumps(dict(data))
        if expires is not None or not self.name.isascii() or not _NO_QUOTE_RE.fullmatch(value):
            return self._dump(value, expires, attributes)
        # A session cookie (no expiry): only the value changes, so dump_cookie's
        # text after it is worked out once for these attributes.
        parts = self._parts
        if parts is None or parts.attributes != attributes:
            suffix = self._dump("v", None, attributes)[len(self.name) + 2 :]
            prefix = f"{self.name}=".encode("ascii")
            parts = _CookieParts(settings, serializer, attributes, prefix, suffix)
        elif (parts.settings, parts.serializer) != (settings, serializer):
            parts = _CookieParts(settings, serializer, attributes, parts.prefix, parts.suffix)
        cookie = parts.prefix + value.encode("ascii") + parts.suffix
        if len(cookie) > _COOKIE_WARN_SIZE:  # dump_cookie warns of a cookie browsers may drop
            return self._dump(value, expires, attributes)
        self._parts = parts
        return cookie

    def _dump(self, value: str, expires: Any, attributes: tuple[Any, ...]) -> bytes:
        path, domain, secure, httponly, samesite, partitioned = attributes
        return dump_cookie(
            self.name, value, expires=expires, path=path, domain=domain, secure=secure,
            httponly=httponly, samesite=samesite, partitioned=partitioned,
        ).encode("latin-1")  # fmt: skip
