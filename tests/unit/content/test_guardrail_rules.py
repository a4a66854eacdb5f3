"""The guardrails' built-in detectors and the checks on an admin's own patterns (content/guardrail_rules.py),
and the scan's redaction (content/guardrail_scan.py)."""

from __future__ import annotations

import pytest

from paygate.content.guardrail_rules import BUILTINS, check_pattern, default_builtin, luhn
from paygate.content.guardrail_scan import MAX_SCAN_CHARS, scan
from paygate.core.domain_errors import Invalid

RULES = {b.id: default_builtin(b) for b in BUILTINS}


def found(rule_id: str, text: str) -> bool:
    rule = RULES[rule_id]
    rule.enabled = True
    hits, _ = scan({"t": text}, [rule])
    return bool(hits)


@pytest.mark.parametrize(
    ("rule_id", "text"),
    [
        ("pii_credit_card", "pay 4111-1111-1111-1111 now"),
        ("pii_credit_card", "5500 0000 0000 0004"),
        ("pii_ssn", "ssn 123-45-6789."),
        ("pii_email", "write to first.last+tag@mail.example.co.uk"),
        ("pii_phone", "call +1 415-555-0132 today"),
        ("pii_phone", "(020) 7946 0958"),
        ("secret_aws_key", "AKIAIOSFODNN7EXAMPLE"),
        ("secret_api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("secret_api_key", "password = hunter2hunter2"),
        ("secret_api_key", "ghp_" + "a" * 36),
        ("pii_iban", "IBAN DE89 3704 0044 0532 0130 00"),
        ("pii_iban", "GB82WEST12345698765432"),
        ("pii_passport", "Passport No: X1234567"),
    ],
)
def test_each_builtin_finds_what_it_names(rule_id: str, text: str) -> None:
    assert found(rule_id, text)


@pytest.mark.parametrize(
    ("rule_id", "text"),
    [
        ("pii_credit_card", "4111 1111 1111 1112"),  # fails Luhn
        ("pii_credit_card", "order 12345"),
        ("pii_ssn", "000-12-3456"),
        ("pii_ssn", "version 1.2.3"),
        ("pii_email", "not an email @ all"),
        ("pii_phone", "version 2024"),
        ("secret_aws_key", "AKIA-short"),
        ("pii_iban", "DE89 3704 0044 0532 0130 01"),  # fails mod 97
        ("pii_passport", "X1234567 without the word"),
    ],
)
def test_and_not_what_it_does_not(rule_id: str, text: str) -> None:
    assert not found(rule_id, text)


def test_luhn() -> None:
    assert luhn("79927398713") and not luhn("79927398710")


def test_redaction_replaces_only_the_match_and_keeps_the_original() -> None:
    rule = RULES["pii_email"]
    rule.enabled = True
    args = {"a": ["x a@b.io y", {"b": "none"}], "n": 3}
    hits, out = scan(args, [rule])
    assert out == {"a": ["x [REDACTED:pii_email] y", {"b": "none"}], "n": 3}
    assert args["a"][0] == "x a@b.io y"  # the input is never changed
    assert [(h.path, h.length) for h in hits] == [("$.a[0]", 6)]
    same_hits, same = scan({"b": "nothing"}, [rule])
    assert same_hits == [] and same == {"b": "nothing"}


def test_text_beyond_the_scan_bound_is_not_scanned() -> None:
    rule = RULES["pii_email"]
    rule.enabled = True
    hits, _ = scan(["x" * MAX_SCAN_CHARS, "a@b.io"], [rule])
    assert hits == []


@pytest.mark.parametrize("pattern", ["(a+)+$", "(\\w*)*x", "(a|b+)*", "(a)\\1", "a*", "", "x" * 501, "["])
def test_dangerous_or_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(Invalid):
        check_pattern(pattern)


@pytest.mark.parametrize("pattern", ["PROJECT-[0-9]{3}", "(foo|bar)+baz", "\\bsecret\\b", "[a-z]+@corp"])
def test_simple_patterns_pass(pattern: str) -> None:
    assert check_pattern(pattern).pattern == pattern
