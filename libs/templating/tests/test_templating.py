"""The template engine: merge variables, conditionals, strict missing variables, the sandbox, CSS."""

from __future__ import annotations

import pytest

from postwire_templating import (
    MissingVariable,
    RenderError,
    TemplateSyntaxProblem,
    check_syntax,
    html_to_text,
    inline_css,
    render_html,
    render_text,
)


def test_merge_variables_and_conditional_blocks() -> None:
    source = "Hi {{ name }}!{% if coupon is defined %} Use {{ coupon }}.{% endif %}" \
             "{% for item in items %} [{{ item.sku }}]{% endfor %}"
    assert render_text(source, {"name": "Ada", "items": [{"sku": "A1"}, {"sku": "B2"}]}) == (
        "Hi Ada! [A1] [B2]")
    assert render_text(source, {"name": "Ada", "coupon": "SAVE10", "items": []}) == (
        "Hi Ada! Use SAVE10.")


def test_a_missing_variable_names_itself_and_renders_nothing() -> None:
    with pytest.raises(MissingVariable) as caught:
        render_text("Hello {{ first_name }}, your order {{ order }}", {"order": 42})
    assert caught.value.name == "first_name"
    with pytest.raises(MissingVariable) as in_condition:
        render_text("{% if vip %}VIP{% endif %}", {})
    assert in_condition.value.name == "vip"
    with pytest.raises(MissingVariable) as attribute:
        render_text("{{ user.email }}", {"user": {"name": "Ada"}})
    assert attribute.value.name == "email"


def test_html_templates_escape_variables() -> None:
    assert render_html("<p>{{ name }}</p>", {"name": "<script>x</script>"}) == (
        "<p>&lt;script&gt;x&lt;/script&gt;</p>")
    assert render_text("{{ name }}", {"name": "<b>"}) == "<b>"


@pytest.mark.parametrize("source", [
    "{{ x.__class__.__mro__ }}",
    "{{ x.__init__.__globals__ }}",
    "{{ items.append(1) }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_the_sandbox_keeps_templates_away_from_python(source: str) -> None:
    with pytest.raises(RenderError) as caught:
        render_text(source, {"x": 1, "items": []})
    assert not isinstance(caught.value, MissingVariable)
    assert "unsafe" in str(caught.value)


def test_runaway_output_is_refused() -> None:
    with pytest.raises(RenderError, match="exceeds"):
        render_text("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", {})


def test_syntax_errors_say_where() -> None:
    with pytest.raises(TemplateSyntaxProblem) as caught:
        check_syntax("line one\n{% if %}")
    assert caught.value.line == 2
    check_syntax("{{ fine }}")


def test_css_is_inlined_and_a_text_part_derived() -> None:
    html = ("<html><head><style>.total { color: #c00; font-weight: bold }</style></head>"
            "<body><h1>Receipt</h1><p class='total'>Total: 12 EUR</p>"
            "<a href='https://shop.example/orders/42'>Your order</a></body></html>")
    inlined = inline_css(html)
    assert "<style>" not in inlined
    assert 'style="color: #c00;font-weight: bold;"' in inlined.replace("; ", ";")
    text = html_to_text(inlined)
    assert "Receipt" in text and "Total: 12 EUR" in text
    assert "https://shop.example/orders/42" in text
    assert "<" not in text
