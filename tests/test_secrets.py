"""Secrets never print: ``Secret`` hides its value, the masker scrubs known secrets and
secret-shaped text (webhook URLs, API key headers, URL passwords) from anything shown.

Tests that need a clean slate use a fresh :class:`Masker`; those of the process-wide
``MASKER`` use unique values, so no test depends on what another registered.
"""

from __future__ import annotations

import string
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaperone import Secret, mask_secrets
from chaperone._secrets import MASK, MASKER, Masker

# Secrets and the text around them avoid "*", so a mask next to text cannot spell one.
SECRET_ALPHABET = string.ascii_letters + string.digits + "-_./:?=&%+~"
secrets = st.text(SECRET_ALPHABET, min_size=4, max_size=60)
surroundings = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="*"))


def unique_secret(prefix: str = "s3cr3t") -> str:
    """A secret value no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex}"


class TestSecret:
    def test_str_and_repr_show_the_mask(self) -> None:
        """str(), repr(), f-strings and format() all give the mask, never the value."""
        value = unique_secret()
        secret = Secret(value)
        shown = [str(secret), repr(secret), f"{secret}", f"{secret!r}", format(secret, "")]
        assert all(value not in text for text in shown)
        assert str(secret) == MASK
        assert repr(secret) == f"Secret({MASK!r})"

    def test_reveal_returns_the_value(self) -> None:
        """reveal() is the one way to the value."""
        value = unique_secret()
        assert Secret(value).reveal() == value

    def test_containers_do_not_show_it(self) -> None:
        """A secret inside a list or dict prints masked too."""
        value = unique_secret()
        secret = Secret(value)
        assert value not in repr([secret, {"key": secret}])

    def test_equality_and_hash_follow_the_value(self) -> None:
        """Secrets with the same value are equal and hash alike; a plain string is not
        equal to a secret.
        """
        value = unique_secret()
        assert Secret(value) == Secret(value)
        assert hash(Secret(value)) == hash(Secret(value))
        assert Secret(value) != Secret(unique_secret())
        assert Secret(value) != value
        assert len({Secret(value), Secret(value)}) == 1

    def test_truthiness_follows_the_value(self) -> None:
        """An empty secret is falsy, any other truthy."""
        assert not Secret("")
        assert Secret(unique_secret())

    def test_has_no_attribute_dict(self) -> None:
        """The value is in a slot: vars() cannot reach it."""
        with pytest.raises(TypeError):
            vars(Secret(unique_secret()))

    def test_building_one_registers_it_with_the_masker(self) -> None:
        """A Secret's value is masked by MASKER from the moment it is built."""
        value = unique_secret()
        assert value in MASKER.mask(f"before {value}")
        Secret(value)
        assert MASKER.mask(f"url={value}&x=1") == f"url={MASK}&x=1"


class TestMasker:
    @given(secret=secrets, before=surroundings, after=surroundings)
    def test_known_secret_never_survives(self, secret: str, before: str, after: str) -> None:
        """Whatever surrounds a known secret, it is gone from the masked text."""
        masker = Masker()
        masker.add(secret)
        masked = masker.mask(before + secret + after + secret)
        assert secret not in masked
        assert MASK in masked

    @given(values=st.lists(secrets, min_size=1, max_size=5), filler=surroundings)
    def test_several_secrets_all_go(self, values: list[str], filler: str) -> None:
        """Every one of several known secrets is masked, overlapping ones included."""
        masker = Masker()
        for value in values:
            masker.add(value)
        masked = masker.mask(filler.join(values))
        assert all(value not in masked for value in values)

    @given(
        text=st.text(string.ascii_lowercase + " ,.", max_size=200),
        secret=st.text(string.ascii_uppercase + string.digits, min_size=4, max_size=30),
    )
    def test_text_without_secrets_is_unchanged(self, text: str, secret: str) -> None:
        """Text that holds no secret and nothing secret-shaped comes back as it was."""
        masker = Masker()
        masker.add(secret)
        assert masker.mask(text) == text

    def test_short_values_are_not_secrets(self) -> None:
        """Values under four characters are not remembered (they would mask words)."""
        masker = Masker()
        masker.add("abc")
        masker.add("")
        assert masker.mask("abc abc") == "abc abc"

    def test_longest_secret_is_masked_first(self) -> None:
        """A secret URL that contains a shorter secret is masked whole, not in pieces."""
        masker = Masker()
        masker.add("T0KEN")
        url = "https://example.test/hook/T0KEN/more"
        masker.add(url)
        assert masker.mask(f"POST {url} failed") == f"POST {MASK} failed"
        assert masker.mask("token T0KEN") == f"token {MASK}"

    def test_url_credential_pieces_are_masked_alone(self) -> None:
        """A secret URL's path and last segment are masked where quoted without the rest."""
        masker = Masker()
        masker.add("https://example.test/hooks/AbCdEf123456")
        assert masker.mask("404 for /hooks/AbCdEf123456") == f"404 for {MASK}"
        assert masker.mask("unknown hook AbCdEf123456") == f"unknown hook {MASK}"

    def test_a_word_at_the_end_of_a_secret_url_stays_readable(self) -> None:
        """A last segment that is a plain word (``…/B0/critical``) is not masked on its own,
        so route names and priorities stay readable; the URL and its path still are.
        """
        masker = Masker()
        url = "https://hooks.example.test/services/T0/B0/critical"
        masker.add(url)
        assert masker.mask("route critical, priority critical") == (
            "route critical, priority critical"
        )
        assert masker.mask(f"POST {url}") == f"POST {MASK}"
        assert masker.mask("404 for /services/T0/B0/critical") == f"404 for {MASK}"

    @pytest.mark.parametrize(
        ("text", "hidden"),
        [
            (
                "posting to https://hooks.slack.com/services/T000/B000/XXXXSECRET failed",
                "XXXXSECRET",
            ),
            (
                "HTTP 404 from https://discord.com/api/webhooks/123/tok3nSECRET",
                "tok3nSECRET",
            ),
            (
                "https://ptb.discordapp.com/api/webhooks/123/tok3nSECRET",
                "tok3nSECRET",
            ),
            ("Authorization: GenieKey 0123-abcd-SECRET", "0123-abcd-SECRET"),
            ("Authorization: Bearer eyJhbGciOi.SECRET-x_y", "eyJhbGciOi.SECRET-x_y"),
            ("smtp://mailer:pa55wordSECRET@mail.example.test:587", "pa55wordSECRET"),
            ("redis://:onlypassSECRET@cache:6379/0", "onlypassSECRET"),
        ],
    )
    def test_secret_shapes_are_masked_unregistered(self, text: str, hidden: str) -> None:
        """Webhook URLs, API key headers and URL passwords are masked without being
        registered first.
        """
        masked = Masker().mask(text)
        assert hidden not in masked
        assert MASK in masked

    def test_url_without_password_keeps_its_user(self) -> None:
        """A URL with a user but no password is left alone."""
        text = "smtp://mailer@mail.example.test:587"
        assert Masker().mask(text) == text

    def test_mask_any_walks_containers(self) -> None:
        """mask_any masks inside mappings and sequences, masks Secret objects whole, and
        leaves numbers and bytes alone.
        """
        masker = Masker()
        masker.add("hunter22")
        value = {
            "url": "https://x.test/?key=hunter22",
            "list": ["a", "hunter22", 3],
            "tuple": ("hunter22",),
            "secret": Secret(unique_secret()),
            "count": 3,
            "raw": b"hunter22",
        }
        masked = masker.mask_any(value)
        assert masked == {
            "url": f"https://x.test/?key={MASK}",
            "list": ["a", MASK, 3],
            "tuple": [MASK],
            "secret": MASK,
            "count": 3,
            "raw": b"hunter22",
        }

    def test_mask_any_formats_exceptions_masked(self) -> None:
        """An exception becomes ``Type: message`` with its secrets masked."""
        masker = Masker()
        masker.add("hunter22")
        assert masker.mask_any(ValueError("bad key hunter22")) == f"ValueError: bad key {MASK}"

    def test_forget_all(self) -> None:
        """After forget_all the masker no longer masks what it was told; shapes still go."""
        masker = Masker()
        masker.add("hunter22")
        masker.forget_all()
        assert masker.mask("hunter22") == "hunter22"
        assert "XSECRETX" not in masker.mask("https://hooks.slack.com/services/XSECRETX")

    def test_adding_twice_changes_nothing(self) -> None:
        """Adding a secret again keeps masking it once, as before."""
        masker = Masker()
        masker.add("hunter22")
        masker.add("hunter22")
        assert masker.mask("hunter22 hunter22") == f"{MASK} {MASK}"


class TestLogProcessor:
    def test_mask_secrets_scrubs_every_value(self) -> None:
        """The logging processor masks secrets in the event and in nested values."""
        value = unique_secret()
        Secret(value)
        event = {
            "event": f"sending to {value}",
            "detail": {"url": value, "tries": [value, 2]},
            "secret": Secret(unique_secret()),
            "count": 2,
        }
        masked = mask_secrets(None, "info", event)
        assert value not in repr(masked)
        assert masked["event"] == f"sending to {MASK}"
        assert masked["secret"] == MASK
        assert masked["count"] == 2
