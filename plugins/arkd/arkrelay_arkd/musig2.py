"""MuSig2 (BIP-327): key aggregation, nonces, partial signatures and their aggregation.

Ark batches sign every VTXO-tree transaction with MuSig2: the input's taproot internal key is
the aggregate of the cosigners' keys, tweaked with the sweep tapscript root. The simulator is
one of those cosigners and the coordinator, so it needs the whole of BIP-327.

No maintained Python MuSig2 package exists, so the algorithms are written here on coincurve
(libsecp256k1) for the point arithmetic and Python integers for the scalars. Function names
are BIP-327's in snake_case; the official test vectors in tests/data/bip327 pin the
behaviour. Points are ``coincurve.PublicKey`` objects, or ``None`` for the point at infinity
(libsecp256k1 has no encoding for it, BIP-327 needs it in nonces).

Errors: a contribution that is not well formed (a public key, a public nonce, the aggregate
nonce, a partial signature) raises :class:`MusigError` naming the signer at fault, so the
coordinator knows whom to blame; every other misuse raises a plain ``ValueError``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import secrets
from collections.abc import Sequence
from typing import Literal

import coincurve

__all__ = [
    "KeyAggContext",
    "MusigError",
    "N",
    "SessionContext",
    "aggregate_tree_key",
    "deterministic_sign",
    "key_agg",
    "key_sort",
    "nonce_agg",
    "nonce_gen",
    "partial_sig_agg",
    "partial_sig_verify",
    "partial_sig_verify_internal",
    "sign",
    "taproot_tweak",
    "tree_session",
]

#: The order of the secp256k1 group.
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

Contribution = Literal["pubkey", "pubnonce", "aggnonce", "aggothernonce", "psig"]

_Point = coincurve.PublicKey | None


class MusigError(ValueError):
    """A signer's contribution is malformed.

    ``signer`` is the index of the signer in the list the caller passed, ``None`` when the
    culprit is an aggregate (the aggregate nonce, or the other signers' nonces aggregated
    for :func:`deterministic_sign`) or a single contribution checked without its index
    (:func:`partial_sig_verify_internal`); ``contrib`` names what was wrong.
    """

    def __init__(self, signer: int | None, contrib: Contribution, detail: str = "") -> None:
        who = "the aggregator" if signer is None else f"signer {signer}"
        super().__init__(f"invalid {contrib} from {who}" + (f": {detail}" if detail else ""))
        self.signer = signer
        self.contrib = contrib


# --- scalars, hashes and points ------------------------------------------------------------


def _tagged_hash(tag: str, data: bytes) -> bytes:
    tag_digest = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_digest + tag_digest + data).digest()


def _int(data: bytes) -> int:
    return int.from_bytes(data, "big")


def _bytes32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _point_from_bytes(data: bytes) -> coincurve.PublicKey:
    """A 33-byte compressed point; ``ValueError`` unless it is on the curve."""
    if len(data) != 33 or data[0] not in (2, 3):
        raise ValueError("not a compressed point")
    return coincurve.PublicKey(bytes(data))


def _point_from_bytes_ext(data: bytes) -> _Point:
    """As :func:`_point_from_bytes`, with 33 zero bytes standing for infinity."""
    if data == bytes(33):
        return None
    return _point_from_bytes(data)


def _point_bytes_ext(point: _Point) -> bytes:
    return bytes(33) if point is None else point.format(compressed=True)


def _xonly(point: coincurve.PublicKey) -> bytes:
    return point.format(compressed=True)[1:]


def _has_even_y(point: coincurve.PublicKey) -> bool:
    return point.format(compressed=True)[0] == 2


def _negate(point: _Point) -> _Point:
    if point is None:
        return None
    encoded = point.format(compressed=True)
    return coincurve.PublicKey(bytes([encoded[0] ^ 1]) + encoded[1:])


def _add(a: _Point, b: _Point) -> _Point:
    if a is None:
        return b
    if b is None:
        return a
    encoded_a, encoded_b = a.format(compressed=True), b.format(compressed=True)
    # libsecp256k1 refuses to return infinity; P + (-P) is recognised here instead.
    if encoded_a[1:] == encoded_b[1:] and encoded_a[0] != encoded_b[0]:
        return None
    return coincurve.PublicKey.combine_keys([a, b])


def _mul(point: _Point, scalar: int) -> _Point:
    scalar %= N
    if point is None or scalar == 0:
        return None
    return point.multiply(_bytes32(scalar))


def _mul_base(scalar: int) -> _Point:
    scalar %= N
    if scalar == 0:
        return None
    return coincurve.PublicKey.from_valid_secret(_bytes32(scalar))


# --- key aggregation ----------------------------------------------------------------------


def key_sort(pubkeys: Sequence[bytes]) -> list[bytes]:
    """The keys in lexicographic order of their 33-byte encodings."""
    return sorted(bytes(pk) for pk in pubkeys)


def _hash_keys(pubkeys: Sequence[bytes]) -> bytes:
    return _tagged_hash("KeyAgg list", b"".join(pubkeys))


def _second_key(pubkeys: Sequence[bytes]) -> bytes:
    for pk in pubkeys[1:]:
        if pk != pubkeys[0]:
            return pk
    return bytes(33)


def _key_agg_coeff(pubkeys: Sequence[bytes], pk: bytes) -> int:
    # The second distinct key gets coefficient 1: one multiplication less, same security.
    if pk == _second_key(pubkeys):
        return 1
    return _int(_tagged_hash("KeyAgg coefficient", _hash_keys(pubkeys) + pk)) % N


@dataclasses.dataclass(frozen=True)
class KeyAggContext:
    """An aggregate key and the tweaks applied to it so far (BIP-327's ``KeyAggContext``).

    ``q`` is the compressed (tweaked) aggregate point; ``gacc`` and ``tacc`` accumulate the
    sign flips and tweak sum that signing and signature aggregation must account for.
    """

    q: bytes
    gacc: int
    tacc: int

    def point(self) -> coincurve.PublicKey:
        return coincurve.PublicKey(self.q)

    def plain(self) -> bytes:
        """The aggregate key, 33-byte compressed."""
        return self.q

    def xonly(self) -> bytes:
        """The aggregate key, 32-byte x-only (BIP-340)."""
        return self.q[1:]

    def apply_tweak(self, tweak: bytes, is_xonly: bool) -> KeyAggContext:
        """A new context with ``tweak`` added: to the x-only key (its even-y lift) when
        ``is_xonly``, else to the plain key."""
        if len(tweak) != 32:
            raise ValueError("The tweak must be a 32-byte array.")
        q = self.point()
        g = N - 1 if is_xonly and not _has_even_y(q) else 1
        t = _int(tweak)
        if t >= N:
            raise ValueError("The tweak must be less than n.")
        tweaked = _add(_mul(q, g), _mul_base(t))
        if tweaked is None:
            raise ValueError("The result of tweaking cannot be infinity.")
        return KeyAggContext(
            q=tweaked.format(compressed=True),
            gacc=g * self.gacc % N,
            tacc=(t + g * self.tacc) % N,
        )


def key_agg(pubkeys: Sequence[bytes]) -> KeyAggContext:
    """Aggregate the 33-byte compressed ``pubkeys`` in the order given (sort them first with
    :func:`key_sort` where the protocol says so)."""
    if not pubkeys:
        raise ValueError("key_agg needs at least one public key")
    pubkeys = [bytes(pk) for pk in pubkeys]
    total: _Point = None
    for i, pk in enumerate(pubkeys):
        try:
            point = _point_from_bytes(pk)
        except ValueError as exc:
            raise MusigError(i, "pubkey", str(exc)) from exc
        total = _add(total, _mul(point, _key_agg_coeff(pubkeys, pk)))
    if total is None:
        # Only reachable by finding a hash collision; BIP-327 still names the case.
        raise ValueError("The aggregate public key is the point at infinity.")
    return KeyAggContext(q=total.format(compressed=True), gacc=1, tacc=0)


# --- nonces -------------------------------------------------------------------------------


def _nonce_hash(
    rand: bytes, pk: bytes, aggpk: bytes, i: int, msg_prefixed: bytes, extra_in: bytes
) -> int:
    data = (
        rand
        + len(pk).to_bytes(1, "big")
        + pk
        + len(aggpk).to_bytes(1, "big")
        + aggpk
        + msg_prefixed
        + len(extra_in).to_bytes(4, "big")
        + extra_in
        + i.to_bytes(1, "big")
    )
    return _int(_tagged_hash("MuSig/nonce", data))


def nonce_gen(
    sk: bytes | None,
    pk: bytes,
    aggpk: bytes | None,
    msg: bytes | None,
    extra_in: bytes | None,
    rand: bytes | None = None,
) -> tuple[bytearray, bytes]:
    """A fresh nonce pair: ``(secnonce, pubnonce)``, 97 and 66 bytes.

    The secret nonce is a ``bytearray`` so that :func:`sign` can erase it: pass that very
    object to ``sign``, not a copy.

    ``rand`` is for test vectors only: ``None`` draws 32 bytes from the OS, and a nonce
    derived from repeated randomness leaks the secret key. ``sk``, ``aggpk``, ``msg`` and
    ``extra_in`` are optional hardening inputs.
    """
    if len(pk) != 33:
        raise ValueError("The public key must be 33 bytes.")
    if sk is not None and len(sk) != 32:
        raise ValueError("The secret key must be 32 bytes.")
    if aggpk is not None and len(aggpk) != 32:
        raise ValueError("The aggregate public key must be 32 bytes.")
    if extra_in is not None and len(extra_in) >= 2**32:
        raise ValueError("extra_in is too long.")
    rand_ = secrets.token_bytes(32) if rand is None else bytes(rand)
    if len(rand_) != 32:
        raise ValueError("rand must be 32 bytes.")
    if sk is not None:
        aux = _tagged_hash("MuSig/aux", rand_)
        rand_ = bytes(a ^ b for a, b in zip(sk, aux, strict=True))
    # A message that is absent and an empty one must give different nonces.
    msg_prefixed = b"\x00" if msg is None else b"\x01" + len(msg).to_bytes(8, "big") + msg
    aggpk_ = b"" if aggpk is None else bytes(aggpk)
    extra = b"" if extra_in is None else bytes(extra_in)
    k1 = _nonce_hash(rand_, bytes(pk), aggpk_, 0, msg_prefixed, extra) % N
    k2 = _nonce_hash(rand_, bytes(pk), aggpk_, 1, msg_prefixed, extra) % N
    if k1 == 0 or k2 == 0:
        # Probability 2^-256; BIP-327 fails rather than sign with a zero nonce.
        raise ValueError("nonce_gen drew a zero nonce")
    r1, r2 = _mul_base(k1), _mul_base(k2)
    assert r1 is not None and r2 is not None
    secnonce = bytearray(_bytes32(k1) + _bytes32(k2) + bytes(pk))
    pubnonce = r1.format(compressed=True) + r2.format(compressed=True)
    return secnonce, pubnonce


def _pubnonce_points(pubnonce: bytes) -> tuple[coincurve.PublicKey, coincurve.PublicKey]:
    if len(pubnonce) != 66:
        raise ValueError("a public nonce is 66 bytes")
    return _point_from_bytes(pubnonce[:33]), _point_from_bytes(pubnonce[33:])


def nonce_agg(pubnonces: Sequence[bytes]) -> bytes:
    """The aggregate of the signers' 66-byte public nonces (66 bytes; a half that sums to
    infinity is 33 zero bytes)."""
    if not pubnonces:
        raise ValueError("nonce_agg needs at least one public nonce")
    sums: list[_Point] = [None, None]
    for i, pubnonce in enumerate(pubnonces):
        try:
            halves = _pubnonce_points(pubnonce)
        except ValueError as exc:
            raise MusigError(i, "pubnonce", str(exc)) from exc
        sums = [_add(total, half) for total, half in zip(sums, halves, strict=True)]
    return _point_bytes_ext(sums[0]) + _point_bytes_ext(sums[1])


# --- signing sessions ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _SessionValues:
    q: coincurve.PublicKey
    gacc: int
    tacc: int
    b: int
    r: coincurve.PublicKey
    e: int


@dataclasses.dataclass(frozen=True)
class SessionContext:
    """Everything the signers agreed on for one message: the aggregate nonce, the keys in
    aggregation order, the tweaks in the order they apply, and the message."""

    aggnonce: bytes
    pubkeys: Sequence[bytes]
    tweaks: Sequence[bytes]
    is_xonly: Sequence[bool]
    msg: bytes

    def __post_init__(self) -> None:
        # Copies, so a caller mutating its lists cannot change a session already in use.
        object.__setattr__(self, "aggnonce", bytes(self.aggnonce))
        object.__setattr__(self, "pubkeys", tuple(bytes(pk) for pk in self.pubkeys))
        object.__setattr__(self, "tweaks", tuple(bytes(t) for t in self.tweaks))
        object.__setattr__(self, "is_xonly", tuple(bool(x) for x in self.is_xonly))
        object.__setattr__(self, "msg", bytes(self.msg))
        if len(self.tweaks) != len(self.is_xonly):
            raise ValueError("tweaks and is_xonly must have the same length")

    def key_agg_context(self) -> KeyAggContext:
        """The aggregate key with the session's tweaks applied."""
        ctx = key_agg(self.pubkeys)
        for tweak, is_xonly in zip(self.tweaks, self.is_xonly, strict=True):
            ctx = ctx.apply_tweak(tweak, is_xonly)
        return ctx

    @functools.cached_property
    def _values(self) -> _SessionValues:
        ctx = self.key_agg_context()
        q = ctx.point()
        b = _int(_tagged_hash("MuSig/noncecoef", self.aggnonce + _xonly(q) + self.msg)) % N
        try:
            if len(self.aggnonce) != 66:
                raise ValueError("an aggregate nonce is 66 bytes")
            r1 = _point_from_bytes_ext(self.aggnonce[:33])
            r2 = _point_from_bytes_ext(self.aggnonce[33:])
        except ValueError as exc:
            raise MusigError(None, "aggnonce", str(exc)) from exc
        # An infinite final nonce (only reachable by a dishonest aggregator) falls back to G
        # so that signing can go on and the culprit is found by the partial-signature checks.
        r = _add(r1, _mul(r2, b))
        if r is None:
            r = coincurve.PublicKey.from_valid_secret(_bytes32(1))
        e = _int(_tagged_hash("BIP0340/challenge", _xonly(r) + _xonly(q) + self.msg)) % N
        return _SessionValues(q=q, gacc=ctx.gacc, tacc=ctx.tacc, b=b, r=r, e=e)

    def key_agg_coeff(self, pk: bytes) -> int:
        if pk not in self.pubkeys:
            raise ValueError("The signer's pubkey must be included in the list of pubkeys.")
        return _key_agg_coeff(self.pubkeys, pk)


def sign(secnonce: bytearray, sk: bytes, session: SessionContext) -> bytes:
    """This signer's 32-byte partial signature.

    ``secnonce`` must be the ``bytearray`` that :func:`nonce_gen` returned: its scalars are
    overwritten with zeros as soon as they are read, so a second call with it raises instead
    of signing twice with one nonce (which would reveal ``sk``). A session that fails before
    that (a bad key or aggregate nonce) leaves the nonce unused.
    """
    if not isinstance(secnonce, bytearray):
        raise TypeError("secnonce must be a bytearray, so that sign can erase it")
    if len(secnonce) != 97:
        raise ValueError("a secret nonce is 97 bytes")
    values = session._values
    k1_, k2_ = _int(secnonce[:32]), _int(secnonce[32:64])
    secnonce[:64] = bytes(64)
    if not 0 < k1_ < N:
        raise ValueError("first secnonce value is out of range.")
    if not 0 < k2_ < N:
        raise ValueError("second secnonce value is out of range.")
    k1, k2 = (k1_, k2_) if _has_even_y(values.r) else (N - k1_, N - k2_)
    d_ = _int(sk)
    if len(sk) != 32 or not 0 < d_ < N:
        raise ValueError("secret key value is out of range.")
    signer = _mul_base(d_)
    assert signer is not None
    pk = signer.format(compressed=True)
    if pk != bytes(secnonce[64:]):
        raise ValueError("Public key does not match nonce_gen argument")
    a = session.key_agg_coeff(pk)
    g = 1 if _has_even_y(values.q) else N - 1
    d = g * values.gacc * d_ % N
    s = (k1 + values.b * k2 + values.e * a * d) % N
    psig = _bytes32(s)
    # Checking our own share costs little and catches a fault before the share leaves.
    r1_, r2_ = _mul_base(k1_), _mul_base(k2_)
    assert r1_ is not None and r2_ is not None
    pubnonce = r1_.format(compressed=True) + r2_.format(compressed=True)
    if not partial_sig_verify_internal(psig, pubnonce, pk, session):
        raise ValueError("the partial signature just made does not verify")
    return psig


def deterministic_sign(
    sk: bytes,
    aggothernonce: bytes,
    pubkeys: Sequence[bytes],
    tweaks: Sequence[bytes],
    is_xonly: Sequence[bool],
    msg: bytes,
    rand: bytes | None = None,
) -> tuple[bytes, bytes]:
    """Sign as the last signer without keeping a secret nonce: the nonce is derived from
    ``sk``, the aggregate of every other signer's public nonce, the tweaked key and the
    message. Returns ``(pubnonce, psig)``; the caller publishes both.

    Only safe for the signer that speaks last: the other nonces must be fixed before this
    runs. ``rand``, when given, is mixed into the key so the nonce is not a function of the
    inputs alone."""
    if len(sk) != 32:
        raise ValueError("The secret key must be 32 bytes.")
    if rand is not None:
        sk_ = bytes(a ^ b for a, b in zip(sk, _tagged_hash("MuSig/aux", rand), strict=True))
    else:
        sk_ = bytes(sk)
    ctx = key_agg(pubkeys)
    for tweak, xonly in zip(tweaks, is_xonly, strict=True):
        ctx = ctx.apply_tweak(tweak, xonly)
    k = [
        _int(
            _tagged_hash(
                "MuSig/deterministic/nonce",
                sk_ + bytes(aggothernonce) + ctx.xonly() + len(msg).to_bytes(8, "big") + msg
                + i.to_bytes(1, "big"),
            )
        ) % N
        for i in (0, 1)
    ]  # fmt: skip
    if 0 in k:
        raise ValueError("deterministic_sign drew a zero nonce")
    if not 0 < _int(sk) < N:
        raise ValueError("secret key value is out of range.")
    signer = _mul_base(_int(sk))
    assert signer is not None
    r1, r2 = _mul_base(k[0]), _mul_base(k[1])
    assert r1 is not None and r2 is not None
    pubnonce = r1.format(compressed=True) + r2.format(compressed=True)
    try:
        aggnonce = nonce_agg([pubnonce, aggothernonce])
    except MusigError as exc:
        raise MusigError(None, "aggothernonce", str(exc)) from exc
    secnonce = bytearray(_bytes32(k[0]) + _bytes32(k[1]) + signer.format(compressed=True))
    session = SessionContext(aggnonce, pubkeys, tweaks, is_xonly, msg)
    return pubnonce, sign(secnonce, sk, session)


def partial_sig_verify_internal(
    psig: bytes, pubnonce: bytes, pk: bytes, session: SessionContext
) -> bool:
    """Whether ``psig`` is the share of the signer with key ``pk`` and public nonce
    ``pubnonce`` in ``session``; a coordinator that already aggregated the nonces uses this
    rather than :func:`partial_sig_verify`."""
    if len(psig) != 32:
        return False
    s = _int(psig)
    if s >= N:
        return False
    values = session._values
    try:
        r1, r2 = _pubnonce_points(pubnonce)
    except ValueError as exc:
        raise MusigError(None, "pubnonce", str(exc)) from exc
    re_s = _add(r1, _mul(r2, values.b))
    if not _has_even_y(values.r):
        re_s = _negate(re_s)
    try:
        point = _point_from_bytes(pk)
    except ValueError as exc:
        raise MusigError(None, "pubkey", str(exc)) from exc
    a = session.key_agg_coeff(bytes(pk))
    g = 1 if _has_even_y(values.q) else N - 1
    expected = _add(re_s, _mul(point, values.e * a * g * values.gacc))
    return _point_bytes_ext(_mul_base(s)) == _point_bytes_ext(expected)


def partial_sig_verify(
    psig: bytes,
    pubnonces: Sequence[bytes],
    pubkeys: Sequence[bytes],
    tweaks: Sequence[bytes],
    is_xonly: Sequence[bool],
    msg: bytes,
    i: int,
) -> bool:
    """Whether ``psig`` is a valid share of signer ``i`` (an index into ``pubnonces`` and
    ``pubkeys``, which are in the same order)."""
    if len(pubnonces) != len(pubkeys):
        raise ValueError("pubnonces and pubkeys must have the same length")
    aggnonce = nonce_agg(pubnonces)
    session = SessionContext(aggnonce, pubkeys, tweaks, is_xonly, msg)
    return partial_sig_verify_internal(psig, pubnonces[i], pubkeys[i], session)


def partial_sig_agg(psigs: Sequence[bytes], session: SessionContext) -> bytes:
    """The 64-byte BIP-340 signature for the session's tweaked aggregate key. Shares are
    not verified here: verify each one first, or a bad share yields an invalid signature."""
    values = session._values
    s = 0
    for i, psig in enumerate(psigs):
        s_i = _int(psig)
        if len(psig) != 32 or s_i >= N:
            raise MusigError(i, "psig", "not a scalar below the group order")
        s += s_i
    g = 1 if _has_even_y(values.q) else N - 1
    s = (s + values.e * g * values.tacc) % N
    return _xonly(values.r) + _bytes32(s)


# --- Ark's VTXO tree -----------------------------------------------------------------------


def aggregate_tree_key(
    cosigner_pubkeys: Sequence[bytes], sweep_tapscript_root: bytes
) -> tuple[KeyAggContext, bytes]:
    """The key a VTXO-tree transaction's input is locked to, as arkd and the TS SDK compute
    it: the cosigners' keys sorted, aggregated, then given the BIP-341 taproot tweak of the
    sweep tapscript root as an x-only tweak. Returns the tweaked context and its 32-byte
    x-only output key.

    Sign with :func:`tree_session`, which sorts and tweaks the same way.
    """
    keys = _tree_keys(cosigner_pubkeys)
    untweaked = key_agg(keys)
    tweaked = untweaked.apply_tweak(taproot_tweak(untweaked, sweep_tapscript_root), True)
    return tweaked, tweaked.xonly()


def _tree_keys(cosigner_pubkeys: Sequence[bytes]) -> list[bytes]:
    if len(cosigner_pubkeys) < 2:
        # arkd falls back to a plain P2TR key for one cosigner while the SDK would still
        # aggregate; an Ark batch always has the server's key and a wallet's, so refuse.
        raise ValueError("a VTXO tree needs at least two cosigner keys")
    return key_sort(cosigner_pubkeys)


def taproot_tweak(internal: KeyAggContext, script_root: bytes) -> bytes:
    """BIP-341's tweak of an aggregate key used as a taproot internal key."""
    if len(script_root) != 32:
        raise ValueError("a tapscript root is 32 bytes")
    return _tagged_hash("TapTweak", internal.xonly() + bytes(script_root))


def tree_session(
    aggnonce: bytes, cosigner_pubkeys: Sequence[bytes], sweep_tapscript_root: bytes, msg: bytes
) -> SessionContext:
    """The signing session for one VTXO-tree input whose sighash is ``msg``: keys sorted,
    one x-only taproot tweak. Signers' indices in it are those of ``key_sort(keys)``."""
    keys = _tree_keys(cosigner_pubkeys)
    tweak = taproot_tweak(key_agg(keys), sweep_tapscript_root)
    return SessionContext(aggnonce, keys, [tweak], [True], msg)
