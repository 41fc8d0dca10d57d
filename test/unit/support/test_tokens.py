import pytest

from kiwi_plugin_support.tokens import (
    PASSTHROUGH_SEPARATOR, TokenKind, TokenPiece, option_name, walk_tokens
)

OPTION = TokenKind.OPTION
UNKNOWN = TokenKind.UNKNOWN_OPTION
SEPARATOR = TokenKind.SEPARATOR
WORD = TokenKind.WORD

# --box takes a value, --flag does not
TAKES_VALUE = {'--box': True, '--flag': False, '-h': False}


def pieces(tokens, takes_value=TAKES_VALUE):
    return list(walk_tokens(tokens, takes_value))


@pytest.mark.parametrize('tokens,expected', [
    (['--box=b'], [TokenPiece(OPTION, '--box', 'b', ('--box=b',))]),
    (['--box', 'b'], [TokenPiece(OPTION, '--box', 'b', ('--box', 'b'))]),
    # only the first '=' parts name and value
    (['--box=a=b'], [TokenPiece(OPTION, '--box', 'a=b', ('--box=a=b',))]),
    (['--flag'], [TokenPiece(OPTION, '--flag', None, ('--flag',))]),
    (['-h'], [TokenPiece(OPTION, '-h', None, ('-h',))]),
    (['word'], [TokenPiece(WORD, '', 'word', ('word',))]),
    (['--'], [TokenPiece(SEPARATOR, '--', None, ('--',))]),
])
def test_each_token_shape(tokens, expected):
    assert pieces(tokens) == expected


def test_a_flag_leaves_the_next_token_alone():
    assert pieces(['--flag', 'word']) == [
        TokenPiece(OPTION, '--flag', None, ('--flag',)),
        TokenPiece(WORD, '', 'word', ('word',)),
    ]


def test_a_flag_written_with_a_value_carries_it():
    # docopt refuses it later; the walk only says what was typed
    assert pieces(['--flag=x']) == [TokenPiece(OPTION, '--flag', 'x', ('--flag=x',))]


@pytest.mark.parametrize('tokens,expected', [
    (['--box='], [TokenPiece(OPTION, '--box', '', ('--box=',))]),
    (['--box', ''], [TokenPiece(OPTION, '--box', '', ('--box', ''))]),
    ([''], [TokenPiece(WORD, '', '', ('',))]),
])
def test_empty_values(tokens, expected):
    assert pieces(tokens) == expected


@pytest.mark.parametrize('value', ['-x', '--flag', '--bogus=v', '--', '-'])
def test_a_value_that_looks_like_an_option_is_a_value(value):
    assert pieces(['--box', value, 'word']) == [
        TokenPiece(OPTION, '--box', value, ('--box', value)),
        TokenPiece(WORD, '', 'word', ('word',)),
    ]


def test_a_missing_value_at_the_end_is_none():
    assert pieces(['--flag', '--box']) == [
        TokenPiece(OPTION, '--flag', None, ('--flag',)),
        TokenPiece(OPTION, '--box', None, ('--box',)),
    ]


@pytest.mark.parametrize('tokens,expected', [
    (['--bogus'], [TokenPiece(UNKNOWN, '--bogus', None, ('--bogus',))]),
    (['--bogus=v'], [TokenPiece(UNKNOWN, '--bogus', 'v', ('--bogus=v',))]),
    (['-x'], [TokenPiece(UNKNOWN, '-x', None, ('-x',))]),
    (['-'], [TokenPiece(UNKNOWN, '-', None, ('-',))]),
    # an unknown option may or may not take a value: the next token
    # is a piece of its own
    (['--bogus', 'v'], [
        TokenPiece(UNKNOWN, '--bogus', None, ('--bogus',)),
        TokenPiece(WORD, '', 'v', ('v',)),
    ]),
])
def test_unknown_options(tokens, expected):
    assert pieces(tokens) == expected


def test_the_walk_goes_on_after_the_separator():
    assert pieces(['--flag', '--', '--box', 'b', 'word']) == [
        TokenPiece(OPTION, '--flag', None, ('--flag',)),
        TokenPiece(SEPARATOR, '--', None, ('--',)),
        TokenPiece(OPTION, '--box', 'b', ('--box', 'b')),
        TokenPiece(WORD, '', 'word', ('word',)),
    ]


def test_a_separator_in_the_map_is_still_the_separator():
    # docopt usages name '--' among their options
    assert pieces(['--'], {'--': False}) == [TokenPiece(SEPARATOR, '--', None, ('--',))]


def test_an_empty_map_makes_each_token_a_piece():
    tokens = ['--box', 'b', '--flag', '--', '-x', '--box=c']
    assert [piece.typed for piece in pieces(tokens, {})] == [(token,) for token in tokens]
    assert [piece.name for piece in pieces(tokens, {})] == [
        '--box', '', '--flag', '--', '-x', '--box'
    ]


def test_pieces_put_together_are_the_tokens():
    tokens = ['w', '--box', 'b', '--box=c', '--flag', '--bogus', 'v', '--', '--box']
    assert [
        token for piece in pieces(tokens) for token in piece.typed
    ] == tokens


def test_no_tokens_no_pieces():
    assert pieces([]) == []


@pytest.mark.parametrize('token,name', [
    ('--a=b', '--a'), ('--a', '--a'), ('--a=b=c', '--a'), ('--a=', '--a'), ('word', 'word'),
])
def test_option_name(token, name):
    assert option_name(token) == name


def test_separator():
    assert PASSTHROUGH_SEPARATOR == '--'
