from kiwi_plugin_support.usage_text import (
    exclusive_groups_of_usage, options_of_usage, usage_section
)

USAGE = """
usage: kiwi-ng system demo --box=<name> [--box=<other>]
           [--fast | --slow | --speed=<n>]
           [--flag] [--flag-two]

options:
    --described-only
        named in the descriptions only: not an option of the usage
    [--left | --out]
"""


def test_usage_section_ends_at_the_first_empty_line():
    assert usage_section(USAGE).endswith('[--flag] [--flag-two]')


def test_options_of_usage_read_the_usage_section_only():
    assert options_of_usage(USAGE) == {
        '--box': True, '--fast': False, '--slow': False, '--speed': True,
        '--flag': False, '--flag-two': False
    }


def test_an_option_takes_a_value_if_any_spelling_does():
    assert options_of_usage('usage: x --a [--a=<v>]') == {'--a': True}


def test_exclusive_groups_of_usage_drop_values_and_skip_descriptions():
    assert exclusive_groups_of_usage(USAGE) == [['--fast', '--slow', '--speed']]


def test_a_usage_without_options():
    assert options_of_usage('usage: x help') == {}
    assert exclusive_groups_of_usage('usage: x help') == []
