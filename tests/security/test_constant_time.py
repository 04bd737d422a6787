"""Every token, signature, secret or hash is compared in constant time (``hmac.compare_digest``).

A static review of the shipped code (services, libs, the CLI; not the test fakes): any ``==``, ``!=``,
``in`` or ``not in`` whose operand is named like a credential (token, secret, signature, digest, mac,
password, api key, hash) is a finding, unless the other side is a literal (``mode != "subscribe"``) or
the line is in the reviewed list below with the reason it is not a secret.

API keys themselves are never compared in Python: the gateway and the SMTP listener look the key's
SHA-256 up in MongoDB (``tenancy.find_key``), so no timing reveals a prefix of a stored key.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [*ROOT.glob("services/*/src"), *(p for p in ROOT.glob("libs/*/src")
                                          if p.parent.name != "testing"), *ROOT.glob("tools/*/src")]
CREDENTIAL = re.compile(
    r"(token|secret|signature|(^|_)sig($|_)|digest|(^|_)mac($|_)|hmac|password|passwd|api_?key"
    r"|credential|fingerprint|(^|_)hash($|_)|hashed)", re.IGNORECASE)
REVIEWED = {
    # (file relative to the repository, the compared names): why a plain comparison is right
    ("services/gateway/src/postwire_gateway/idempotency.py", "fingerprint"):
        "a SHA-256 of the caller's own request under its own key, not a secret",
}
VERIFIERS = {
    "services/provider-ingest/src/postwire_provider_ingest/app.py": "DLR and inbound tokens",
    "services/provider-ingest/src/postwire_provider_ingest/signature.py": "signed provider status",
    "services/provider-ingest/src/postwire_provider_ingest/wa_webhook.py": "WhatsApp verify token",
    "libs/whatsapp/src/postwire_whatsapp/webhooks.py": "X-Hub-Signature-256",
    "libs/platform/src/postwire_platform/signed_tokens.py": "tracking tokens, MTA feedback",
    "libs/sdk/src/postwire_client/webhooks.py": "customers' webhook signature check",
}


def _names(node: ast.AST) -> list[str]:
    """Identifiers an operand is made of (``a.b["c"]`` → a, b, c); a call contributes its callee."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [*_names(node.value), node.attr]
    if isinstance(node, ast.Subscript):
        key = node.slice
        extra = [key.value] if isinstance(key, ast.Constant) and isinstance(key.value, str) else []
        return [*_names(node.value), *extra]
    if isinstance(node, ast.Call):
        return _names(node.func)
    if isinstance(node, ast.Starred):
        return _names(node.value)
    return []


def _secretish(node: ast.AST) -> list[str]:
    # ALL_CAPS names are constants (error codes such as TOKEN_EXPIRED), not secret values
    return [n for n in _names(node) if CREDENTIAL.search(n) and not n.isupper()]


def _literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) or (
        isinstance(node, ast.Tuple | ast.List | ast.Set) and all(_literal(e) for e in node.elts))


def findings(roots: list[Path], base: Path = ROOT) -> list[str]:
    found: list[str] = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            rel = str(path.relative_to(base))
            tree = ast.parse(path.read_text(), filename=rel)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Compare):
                    continue
                operands = [node.left, *node.comparators]
                for op, left, right in zip(node.ops, operands, operands[1:], strict=False):
                    if not isinstance(op, ast.Eq | ast.NotEq | ast.In | ast.NotIn):
                        continue
                    if _literal(left) or _literal(right):
                        continue
                    names = _secretish(left) + _secretish(right)
                    if not names:
                        continue
                    if any((rel, n) in REVIEWED for n in names):
                        continue
                    found.append(f"{rel}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_token_signature_or_hash_is_compared_with_a_plain_operator() -> None:
    assert SHIPPED, "found no source to review"
    assert findings(SHIPPED) == []


def test_every_verifier_uses_compare_digest() -> None:
    for rel, what in VERIFIERS.items():
        source = (ROOT / rel).read_text()
        assert "hmac.compare_digest(" in source, f"{rel} ({what}) does not use hmac.compare_digest"


def test_the_review_catches_a_plain_comparison(tmp_path: Path) -> None:
    """The scan itself works: a plain comparison of a signature is reported."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "check.py").write_text(
        "def ok(given, settings, mode):\n"
        "    if mode != 'subscribe':\n"
        "        return False\n"
        "    return given == settings.dlr_token or given in settings.provider_secrets\n")
    assert findings([tmp_path / "src"], tmp_path) == [
        "src/check.py:4: given == settings.dlr_token",
        "src/check.py:4: given in settings.provider_secrets"]
