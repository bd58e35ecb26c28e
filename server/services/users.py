"""Profiles, avatars, password changes, and the account's GDPR export and erasure."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.export import EXPORT_FORMAT, EXPORT_VERSION
from protocol.objects import UserPrivate, UserPublic
from server.cache import Cache
from server.errors import NotFound, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from server.observability.audit import AuditEvent, audit
from server.security.images import EXTENSIONS, sniff_image
from server.security.sanitize import clean_text
from server.security.scanner import Scanner
from server.security.tokens import IssuedToken
from server.services.auth import AuthService
from server.services.clock import Clock
from server.services.erasures import ErasureFollowUp
from server.services.export_slots import ExportSlots
from server.services.groups import member_notice
from server.services.notify import Notifier
from server.services.views import profile_key, user_private, user_public
from server.store import accounts
from server.store import groups as group_repo
from server.store import users as repo
from server.store.db import Database
from server.store.listing import ListQuery, ListSpec, fetch_page
from server.store.models import Role, User

MAX_AVATAR_BYTES = 2 * 1024 * 1024
USER_LIST = ListSpec(
    sorts={
        "created_at": User.created_at,
        "username": User.username,
        "display_name": User.display_name,
    },
    default_sort="username",
    tiebreak=User.id,
    search=(User.username, User.display_name),
    created=User.created_at,
)
EXPORT_BATCH = 500
EXPORTS_PER_NODE = 4
_public_codec = msgspec.json.Decoder(UserPublic)
_encoder = msgspec.json.Encoder()


class UserService:
    """What a user can do with their own account, and what others can see of it."""

    def __init__(
        self,
        db: Database,
        auth: AuthService,
        cache: Cache,
        scanner: Scanner,
        notifier: Notifier,
        clock: Clock,
        erasure: ErasureFollowUp,
        *,
        media_dir: str,
        media_url_prefix: str,
        cache_ttl_s: int,
        exports: ExportSlots | None = None,
    ) -> None:
        self._db = db
        self._exports = exports or ExportSlots(EXPORTS_PER_NODE)
        self._auth = auth
        self._cache = cache
        self._scanner = scanner
        self._notifier = notifier
        self._clock = clock
        self._erasure = erasure
        self._media = Path(media_dir)
        self._media_url = media_url_prefix.rstrip("/")
        self._ttl = cache_ttl_s
        self.export_batch = EXPORT_BATCH
        """Rows read per round trip of the export's cursors."""

    async def me(self, user_id: uuid.UUID) -> UserPrivate:
        """The caller's account."""
        return user_private(await self._get(user_id))

    async def public(self, user_id: uuid.UUID) -> UserPublic:
        """Anyone's public profile, cached for a few minutes and invalidated on change.

        Raises:
            NotFound: no such user.
        """
        key = profile_key(user_id)
        cached = await self._cache.get(key)
        if cached is not None:
            return _public_codec.decode(cached)
        profile = user_public(await self._get(user_id))
        await self._cache.set(key, msgspec.json.encode(profile), self._ttl)
        return profile

    async def search(
        self, query: ListQuery, viewer: uuid.UUID | None = None
    ) -> tuple[list[UserPublic], int]:
        """Users matching a list query (a lag-tolerant read)."""
        async with self._db.read_session(for_user=viewer) as session:
            rows, total = await fetch_page(session, select(User), query)
        return [user_public(row[0]) for row in rows], total

    async def update_profile(
        self, user_id: uuid.UUID, *, display_name: str | None, bio: str | None
    ) -> UserPrivate:
        """Change display name and/or bio (sanitised)."""
        name = (
            clean_text(
                display_name, field="display_name", min_length=1, max_length=100, not_blank=True
            )
            if display_name is not None
            else None
        )
        text = clean_text(bio, field="bio", max_length=1000) if bio is not None else None
        changes = {"display_name": name, "bio": text}
        async with self._db.session() as session, session.begin():
            user = await self._get_in(session, user_id)
            for field, value in changes.items():
                setattr(user, field, getattr(user, field) if value is None else value)
        await self._forget(user_id)
        return user_private(user)

    async def change_password(
        self,
        user_id: uuid.UUID,
        *,
        current: str,
        new: str,
        totp_code: str | None,
        session_id: uuid.UUID | None,
    ) -> IssuedToken:
        """Replace the password after re-authentication; other sessions and sockets end.

        Raises:
            Forbidden: wrong current password.
            MfaRequired: MFA on and the code is missing or wrong.
            ValidationFailed: the new password breaks the policy.
        """
        user = await self._get(user_id)
        await self._auth.verify_password(user, current)
        await self._auth.require_second_factor(user, totp_code)
        issued = await self.replace_password(user_id, new, session_id)
        audit(AuditEvent.PASSWORD_CHANGED, user_id)
        return issued

    async def replace_password(
        self, user_id: uuid.UUID, new: str, keep_session: uuid.UUID | None
    ) -> IssuedToken:
        """What every password change does (a change, a reset).

        The new password is stored, every refresh family but ``keep_session`` is revoked,
        access tokens issued before now stop working, and the user's sockets are closed.

        Raises:
            ValidationFailed: the new password breaks the policy.
        """
        issued = await self._auth.set_password(user_id, new, keep_session)
        await self._notifier.disconnect_user(user_id, "password changed")
        return issued

    async def set_avatar(self, user_id: uuid.UUID, data: bytes) -> UserPrivate:
        """Store an avatar after size, malware and type checks (in that order).

        Raises:
            PayloadTooLarge: over 2 MiB.
            ValidationFailed: the scanner found malware.
            UnsupportedMediaType: not PNG, JPEG or WebP by magic bytes.
        """
        if len(data) > MAX_AVATAR_BYTES:
            raise PayloadTooLarge("Avatars are limited to 2 MiB")
        verdict = await self._scanner.scan(data)
        if not verdict.clean:
            raise ValidationFailed.field(
                "file", f"The file was rejected by the malware scanner ({verdict.signature})"
            )
        kind = sniff_image(data)
        if kind is None:
            raise UnsupportedMediaType("Avatars must be PNG, JPEG or WebP images")
        name = f"{user_id}-{secrets.token_hex(8)}.{EXTENSIONS[kind]}"
        folder = self._media / "avatars"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        async with self._db.session() as session, session.begin():
            user = await self._get_in(session, user_id)
            old, user.avatar_url = user.avatar_url, f"{self._media_url}/avatars/{name}"
        self._remove_file(old)
        await self._forget(user_id)
        return user_private(user)

    async def export(self, user_id: uuid.UUID) -> AsyncGenerator[bytes]:
        """Everything held about the caller as JSON pieces (GDPR access; a lag-tolerant read).

        The pieces join into one :class:`protocol.export.AccountExport` object; rows come off
        server-side cursors ``export_batch`` at a time, so a large export is never held whole.

        Raises:
            NotFound: no such user (on the first piece).
            RateLimited: the caller's previous export still runs, or too many run (first piece).
        """
        with self._exports.hold(user_id):
            async with aclosing(self._export(user_id)) as pieces:
                async for piece in pieces:
                    yield piece

    async def _export(self, user_id: uuid.UUID) -> AsyncGenerator[bytes]:
        async with self._db.read_session(for_user=user_id) as session:
            user = await self._get_in(session, user_id)
            head = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "exported_at": self._clock.now(),
                "user": user_private(user),
            }
            audit(AuditEvent.ACCOUNT_EXPORTED, user_id)
            yield _encoder.encode(head)[:-1]
            for name, query in accounts.export_sections(user_id).items():
                yield b',"' + name.encode() + b'":['
                separator = b""
                async for rows in accounts.stream_rows(session, query, self.export_batch):
                    yield separator + b",".join(_encoder.encode(row) for row in rows)
                    separator = b","
                yield b"]"
            settings = await accounts.notification_settings(session, user_id)
            yield b',"notification_settings":' + _encoder.encode(settings) + b"}"

    async def delete_account(
        self, user_id: uuid.UUID, *, password: str, totp_code: str | None
    ) -> None:
        """Erase the account and personal data (see docs/architecture/accounts.md).

        Raises:
            Forbidden: wrong password.
            MfaRequired: MFA on and the code is missing or wrong.
        """
        user = await self._get(user_id)
        await self._auth.verify_password(user, password)
        await self._auth.require_second_factor(user, totp_code)
        now = self._clock.now()
        async with self._db.session() as session, session.begin():
            if not await accounts.lock_user(session, user_id):
                raise NotFound("User not found")  # erased meanwhile by a request like this one
            heirs = await accounts.hand_over_groups(session, user_id, now)
            left = await accounts.leave_all_groups(session, user_id)
            audience = {group: await group_repo.member_ids(session, group) for group in left}
            groups = left + await accounts.erase_messages(session, user_id, now)
            await accounts.erase_snapshots(session, user_id)
            await accounts.forget_dead_letters(session, user.email)
            await accounts.delete_user(session, user_id)
            accounts.stage_erasure(session, user_id, groups, now)
        audit(AuditEvent.ACCOUNT_ERASED, user_id)
        self._remove_file(user.avatar_url)
        await self._erasure.finish(user_id, groups, now)
        await self._tell_members(user_id, audience, heirs)

    async def _tell_members(
        self,
        user_id: uuid.UUID,
        audience: dict[uuid.UUID, list[uuid.UUID]],
        heirs: dict[uuid.UUID, uuid.UUID],
    ) -> None:
        """Tell the members' sockets of a new owner, then that the user left, group by group.

        As when the two are done by hand. Best effort, like every push (a bus away is logged
        by the notifier); the members were read in the erasure's transaction.
        """
        for group_id, members in audience.items():
            heir = heirs.get(group_id)
            if heir is not None:
                frame = member_notice(group_id, heir, "role_changed", Role.OWNER)
                await self._notifier.to_users(members, frame)
            await self._notifier.to_users(members, member_notice(group_id, user_id, "left", None))

    async def _get(self, user_id: uuid.UUID) -> User:
        async with self._db.session() as session:
            return await self._get_in(session, user_id)

    @staticmethod
    async def _get_in(session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await repo.get_user(session, user_id)
        if user is None:
            raise NotFound("User not found")
        return user

    async def _forget(self, user_id: uuid.UUID) -> None:
        await self._cache.delete(profile_key(user_id))

    def _remove_file(self, url: str | None) -> None:
        if url and url.startswith(f"{self._media_url}/avatars/"):
            (self._media / "avatars" / url.rsplit("/", 1)[1]).unlink(missing_ok=True)
