"""Access tokens: issue, verify, pinned algorithms, key rotation; opaque refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.errors import Unauthorized
from server.security.tokens import (
    REQUIRED_CLAIMS,
    TokenCodec,
    hash_token,
    load_keys,
    new_opaque_token,
)
from server.settings import DEV_JWT_SECRET, Settings

USER = uuid.UUID("11111111-2222-3333-4444-555555555555")
SESSION = uuid.UUID("99999999-8888-7777-6666-555555555555")
OLD_SECRET = "secret-of-32-chars-or-more......"


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(USER),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": "studybuddy",
        "aud": "studybuddy-api",
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(claims: dict[str, Any], headers: dict[str, Any] | None = None) -> str:
    return jwt.encode(
        claims,
        DEV_JWT_SECRET,
        algorithm="HS256",
        headers={"kid": "k1"} if headers is None else headers,
    )


@pytest.fixture
def codec() -> TokenCodec:
    """A codec on the development settings (HS256, kid k1), on the real clock."""
    return TokenCodec.from_settings(Settings())


def test_issued_token_verifies_to_the_same_principal(codec: TokenCodec) -> None:
    """A fresh token round-trips: same user, token id, times and refresh family."""
    issued = codec.issue(USER, SESSION)
    assert issued.expires_in == 900
    assert codec.verify(issued.token) == issued.principal
    assert issued.principal.user_id == USER
    assert issued.principal.session_id == SESSION
    assert issued.principal.expires_at - int(issued.principal.issued_at) == 900


def test_token_without_session_has_no_sid(codec: TokenCodec) -> None:
    """Without a refresh family the token carries no 'sid' and verifies with None."""
    issued = codec.issue(USER)
    assert "sid" not in jwt.decode(issued.token, options={"verify_signature": False})
    assert codec.verify(issued.token).session_id is None


def test_token_carries_every_required_claim_and_kid(codec: TokenCodec) -> None:
    """The header names the key and algorithm; the payload has all required claims."""
    issued = codec.issue(USER)
    header = jwt.get_unverified_header(issued.token)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert header["kid"] == "k1"
    assert header["alg"] == "HS256"
    assert set(REQUIRED_CLAIMS) <= payload.keys()
    assert payload["iss"] == "studybuddy"
    assert payload["aud"] == "studybuddy-api"


def test_issued_at_has_millisecond_precision() -> None:
    """The iat claim keeps milliseconds, while nbf and exp are whole seconds."""
    codec = TokenCodec.from_settings(Settings(), clock=lambda: time.time() // 1 + 0.123456)
    issued = codec.issue(USER)
    payload = jwt.decode(issued.token, options={"verify_signature": False})
    assert payload["iat"] == pytest.approx(payload["nbf"] + 0.123)
    assert isinstance(payload["nbf"], int)
    assert codec.verify(issued.token).issued_at == issued.principal.issued_at


def test_two_tokens_have_distinct_ids(codec: TokenCodec) -> None:
    """Every token has its own jti."""
    assert codec.issue(USER).principal.token_id != codec.issue(USER).principal.token_id


def test_tampered_signature_is_refused(codec: TokenCodec) -> None:
    """Changing the signature makes the token invalid."""
    header, payload, signature = codec.issue(USER).token.split(".")
    forged = "A" if signature[0] != "A" else "B"
    with pytest.raises(Unauthorized):
        codec.verify(f"{header}.{payload}.{forged}{signature[1:]}")


def test_tampered_payload_is_refused(codec: TokenCodec) -> None:
    """Swapping in another user's id under the original signature is refused."""
    header, _, signature = codec.issue(USER).token.split(".")
    payload = _b64(_claims(sub=str(uuid.uuid4())))
    with pytest.raises(Unauthorized):
        codec.verify(f"{header}.{payload}.{signature}")


def test_alg_none_token_is_refused(codec: TokenCodec) -> None:
    """An unsigned token naming a real key id is refused (the algorithm is pinned)."""
    header = _b64({"alg": "none", "typ": "JWT", "kid": "k1"})
    token = f"{header}.{_b64(_claims())}."
    with pytest.raises(Unauthorized) as caught:
        codec.verify(token)
    assert caught.value.message == "Invalid or expired access token"


def test_hand_signed_token_with_the_right_key_is_accepted(codec: TokenCodec) -> None:
    """The forging helper itself is sound: HS256 with the real secret verifies."""
    assert codec.verify(_forge(_claims(), DEV_JWT_SECRET.encode())).user_id == USER


def test_token_signed_with_another_algorithm_is_refused(codec: TokenCodec) -> None:
    """HS512 with the right secret is still refused: only HS256 is accepted for k1."""
    token = _forge(_claims(), DEV_JWT_SECRET.encode(), alg="HS512")
    with pytest.raises(Unauthorized):
        codec.verify(token)


def test_wrong_audience_is_refused(codec: TokenCodec) -> None:
    """A token for another audience, signed with our key, is refused."""
    other = TokenCodec.from_settings(Settings(jwt_audience="another-api"))
    with pytest.raises(Unauthorized):
        codec.verify(other.issue(USER).token)


def test_wrong_issuer_is_refused(codec: TokenCodec) -> None:
    """A token from another issuer, signed with our key, is refused."""
    other = TokenCodec.from_settings(Settings(jwt_issuer="someone-else"))
    with pytest.raises(Unauthorized):
        codec.verify(other.issue(USER).token)


def test_expired_token_is_refused(codec: TokenCodec) -> None:
    """A token issued by a clock an hour in the past (TTL 15 minutes) has expired."""
    past = TokenCodec.from_settings(Settings(), clock=lambda: time.time() - 3600)
    with pytest.raises(Unauthorized):
        codec.verify(past.issue(USER).token)


def test_token_within_leeway_is_accepted(codec: TokenCodec) -> None:
    """Five seconds of clock skew is tolerated on expiry."""
    token = _signed(_claims(exp=int(time.time()) - 2))
    assert codec.verify(token).user_id == USER


def test_token_not_yet_valid_is_refused(codec: TokenCodec) -> None:
    """A token whose nbf is a minute ahead is refused."""
    future = int(time.time()) + 60
    token = _signed(_claims(nbf=future, iat=future, exp=future + 600))
    with pytest.raises(Unauthorized):
        codec.verify(token)


def test_missing_kid_is_refused(codec: TokenCodec) -> None:
    """A correctly signed token without a kid header names no key and is refused."""
    token = _signed(_claims(), headers={})
    assert "kid" not in jwt.get_unverified_header(token)
    with pytest.raises(Unauthorized):
        codec.verify(token)


def test_unknown_kid_is_refused(codec: TokenCodec) -> None:
    """A kid that is not configured is refused."""
    with pytest.raises(Unauthorized):
        codec.verify(_signed(_claims(), headers={"kid": "k9"}))


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_missing_required_claim_is_refused(codec: TokenCodec, claim: str) -> None:
    """Each of sub, iat, nbf, exp, iss, aud and jti is mandatory."""
    with pytest.raises(Unauthorized):
        codec.verify(_signed(_claims(**{claim: None})))


def test_subject_that_is_not_a_uuid_is_refused(codec: TokenCodec) -> None:
    """A signed token whose sub is not a UUID is refused, not a server error."""
    with pytest.raises(Unauthorized):
        codec.verify(_signed(_claims(sub="not-a-uuid")))


def test_session_id_that_is_not_a_uuid_is_refused(codec: TokenCodec) -> None:
    """A signed token whose sid is a malformed string is refused."""
    with pytest.raises(Unauthorized):
        codec.verify(_signed(_claims(sid="not-a-uuid")))


def test_session_id_of_the_wrong_type_is_refused(codec: TokenCodec) -> None:
    """A signed token whose sid is a number is refused like any other defect."""
    with pytest.raises(Unauthorized):
        codec.verify(_signed(_claims(sid=5)))


def test_garbage_is_refused(codec: TokenCodec) -> None:
    """Something that is not a JWT at all is refused."""
    for token in ("", "garbage", "a.b.c", "...."):
        with pytest.raises(Unauthorized):
            codec.verify(token)


def test_previous_key_still_verifies_after_rotation() -> None:
    """A token signed by a retired key (listed as kid:secret) is still accepted."""
    old = TokenCodec.from_settings(Settings(jwt_key_id="old", jwt_secret=OLD_SECRET))
    token = old.issue(USER).token
    current = TokenCodec.from_settings(Settings(jwt_previous_keys=(f"old:{OLD_SECRET}",)))
    assert current.verify(token).user_id == USER


def test_previous_key_is_not_used_for_signing() -> None:
    """New tokens are signed with the current key, even when old keys are listed."""
    codec = TokenCodec.from_settings(Settings(jwt_previous_keys=(f"old:{OLD_SECRET}",)))
    assert jwt.get_unverified_header(codec.issue(USER).token)["kid"] == "k1"


def test_retired_key_is_refused_once_dropped() -> None:
    """Without the kid:secret entry, the old key's tokens no longer verify."""
    old = TokenCodec.from_settings(Settings(jwt_key_id="old", jwt_secret=OLD_SECRET))
    with pytest.raises(Unauthorized):
        TokenCodec.from_settings(Settings()).verify(old.issue(USER).token)


def test_load_keys_lists_current_and_previous_keys() -> None:
    """The signing key is also a verification key; previous keys verify only."""
    current, keys = load_keys(Settings(jwt_previous_keys=(f"old:{OLD_SECRET}", "older:x")))
    assert current.kid == "k1"
    assert current.sign == DEV_JWT_SECRET.encode()
    assert set(keys) == {"k1", "old", "older"}
    assert keys["old"].verify == OLD_SECRET.encode()
    assert keys["old"].sign is None
    assert keys["old"].algorithm == "HS256"


def _ed25519_files(directory: Path) -> tuple[str, str]:
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_file = directory / "jwt.key"
    public_file = directory / "jwt.pub"
    private_file.write_bytes(private_pem)
    public_file.write_bytes(public_pem)
    return str(private_file), str(public_file)


def test_asymmetric_keys_from_files_sign_and_verify(tmp_path: Path) -> None:
    """With Ed25519 key files, tokens are EdDSA-signed and verify with the public key."""
    private_file, public_file = _ed25519_files(tmp_path)
    settings = Settings(
        jwt_algorithm="EdDSA",
        jwt_private_key_file=private_file,
        jwt_public_key_file=public_file,
        jwt_key_id="ed1",
    )
    codec = TokenCodec.from_settings(settings)
    issued = codec.issue(USER, SESSION)
    assert jwt.get_unverified_header(issued.token) == {"alg": "EdDSA", "kid": "ed1", "typ": "JWT"}
    assert codec.verify(issued.token) == issued.principal


def test_asymmetric_mode_refuses_hmac_tokens_signed_with_the_public_key(tmp_path: Path) -> None:
    """The classic key-confusion attack (HS256 keyed with the public PEM) is refused."""
    private_file, public_file = _ed25519_files(tmp_path)
    settings = Settings(
        jwt_algorithm="EdDSA",
        jwt_private_key_file=private_file,
        jwt_public_key_file=public_file,
    )
    codec = TokenCodec.from_settings(settings)
    forged = _forge(_claims(), Path(public_file).read_bytes())
    with pytest.raises(Unauthorized):
        codec.verify(forged)


def _forge(claims: dict[str, Any], key: bytes, alg: str = "HS256") -> str:
    """Sign by hand: PyJWT refuses a PEM as an HMAC secret and warns on short HS512 keys."""
    digestmod = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_b64({'alg': alg, 'typ': 'JWT', 'kid': 'k1'})}.{_b64(claims)}"
    digest = hmac.new(key, signing_input.encode(), digestmod).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


def test_new_opaque_tokens_are_random_and_url_safe() -> None:
    """Refresh tokens are 256-bit URL-safe strings, never repeated."""
    tokens = {new_opaque_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 43
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_hash_token_is_sha256_hex() -> None:
    """The stored form is the SHA-256 hex digest, stable and distinct per token."""
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_token("abc") != hash_token("abd")
