"""
One walk over command line tokens, for every check of arguments.

The plugins look at arguments as the user typed them in several
places: the options of a plugin command, the arguments after '--'
forwarded to kiwi, a request for help. They all cut the tokens into
the same pieces here, so that '--name=value', '--name value', flags,
'--' and unknown options mean the same thing everywhere.

The walk knows no command: what an option is comes from a map of
option name -> whether it takes a value, which the callers read out
of a usage text (see usage_text.options_of_usage).
"""
import enum
from typing import Iterator, Mapping, NamedTuple, Optional, Sequence, Tuple

# The argument that separates the options of a plugin command from
# the arguments it forwards to kiwi
PASSTHROUGH_SEPARATOR = '--'


class TokenKind(enum.Enum):
    """
    What a piece of the command line is
    """
    # an option of the map given to the walk
    OPTION = 'option'
    # a token shaped like an option ('-' first) that the map lacks
    UNKNOWN_OPTION = 'unknown option'
    # '--' alone
    SEPARATOR = 'separator'
    # anything else, e.g. a positional argument
    WORD = 'word'


class TokenPiece(NamedTuple):
    """
    One piece of a command line

    :param TokenKind kind: what the piece is
    :param str name: the option's name, '--a' of '--a=b' or of
        '--a b'; '--' for the separator; '' for a word
    :param str value: the option's value, from '--a=b' or from the
        token after it, None if it has none; the word itself for a word
    :param tuple typed: the tokens of the piece as typed, one or two
    """
    kind: TokenKind
    name: str
    value: Optional[str]
    typed: Tuple[str, ...]


def option_name(token: str) -> str:
    """
    The name a token gives, '--a' of '--a=b'

    :param str token: one command line token
    :return: the token up to its first '=', or the whole token
    """
    return token.partition('=')[0]


def walk_tokens(
    tokens: Sequence[str], takes_value: Mapping[str, bool]
) -> Iterator[TokenPiece]:
    """
    The tokens cut into pieces, in the order typed

    A token starting with '-' is an option. '--name=value' carries its
    value, also for an option the map lacks or says is a flag. An
    option of the map that takes a value and has no '=' takes the next
    token as its value, whatever it looks like ('-x', '--', ''), as
    docopt does; at the end of the tokens its value is None. An option
    the map lacks takes no token after it: nobody knows whether it
    would. '--' is the separator; the walk goes on after it with the
    same rules, since whether '--' ends the options is up to the
    caller's command (a caller that forwards what follows stops there).

    :param list tokens: arguments as the user typed them
    :param dict takes_value: option name -> whether it takes a value;
        an empty map makes every token a piece of its own
    :return: one TokenPiece per option with its value, separator or word
    """
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token == PASSTHROUGH_SEPARATOR:
            yield TokenPiece(TokenKind.SEPARATOR, token, None, (token,))
            continue
        if not token.startswith('-'):
            yield TokenPiece(TokenKind.WORD, '', token, (token,))
            continue
        name, equals, value = token.partition('=')
        kind = TokenKind.OPTION if name in takes_value else TokenKind.UNKNOWN_OPTION
        if equals:
            yield TokenPiece(kind, name, value, (token,))
        elif takes_value.get(name, False) and position < len(tokens):
            following = tokens[position]
            position += 1
            yield TokenPiece(kind, name, following, (token, following))
        else:
            yield TokenPiece(kind, name, None, (token,))
