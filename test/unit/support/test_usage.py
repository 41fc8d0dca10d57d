import docopt
import pytest

from kiwi_plugin_support import usage

DEMO_USAGE = """
usage: kiwi-ng system demo -h | --help
       kiwi-ng system demo --box=<name>
           [--fast | --slow]
           [--flag]
           -- <kiwi_build_command_args>...
       kiwi-ng system demo --list
       kiwi-ng system demo help

options:
    --box=<name>
        a box
"""


@pytest.fixture
def demo():
    usage.register(DEMO_USAGE, 'system demo', passthrough_to='system build')
    return usage.CommandUsage(DEMO_USAGE, 'system demo', 'system build')


def parse(argv):
    # the way kiwi parses a task usage: docopt with help enabled
    return docopt.docopt(DEMO_USAGE, ['system', 'demo'] + argv)


def test_options_of_usage_maps_value_options():
    assert usage.options_of_usage(DEMO_USAGE) == {
        '-h': False, '--help': False, '--box': True, '--fast': False,
        '--slow': False, '--flag': False, '--list': False, '--': False
    }


def test_exclusive_groups_of_usage():
    assert usage.exclusive_groups_of_usage(DEMO_USAGE) == [['--fast', '--slow']]


def test_valid_arguments_parse(demo):
    result = parse(['--box', 'x', '--flag', '--', '--description', 'd'])
    assert result['--box'] == 'x'
    assert result['<kiwi_build_command_args>'] == ['--description', 'd']


@pytest.mark.parametrize('argv,expected', [
    (['--box', 'x', '--bogus', '--', 'a'],
     "unknown option '--bogus' for 'kiwi-ng system demo'"),
    (['--box', 'x', '--description', 'd'],
     "'--description' is an option of 'kiwi-ng system build': put it after '--'"),
    (['--box', 'x'],
     "missing '-- <arguments of kiwi-ng system build>'"),
    (['--box=x', 'stray'],
     "unexpected argument 'stray': arguments for 'kiwi-ng system build' go after '--'"),
    (['--box', 'x', '--fast', '--slow', '--', 'a'],
     '--fast and --slow exclude each other'),
    (['--list', '--flag'],
     "invalid arguments for 'kiwi-ng system demo'"),
])
def test_bad_input_is_one_line_and_exit_1(demo, caplog, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 1
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1
    assert expected in errors[0]
    assert '\n' not in errors[0]


def test_value_of_an_option_is_not_a_stray(demo):
    assert demo.diagnose(['--box', 'stray-looking', '--', 'a']) is None


def test_help_prints_usage_and_exits_0(demo, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(['--help'])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith('usage: kiwi-ng system demo')


def test_help_where_a_value_would_go_prints_usage(demo, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(['--box', '--help'])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith('usage: kiwi-ng system demo')


def test_help_after_separator_belongs_to_kiwi(demo):
    result = parse(['--box', 'x', '--', '--help'])
    assert result['<kiwi_build_command_args>'] == ['--help']


def test_unregistered_usage_keeps_previous_behaviour(demo):
    other = 'usage: prog --known\n'
    with pytest.raises(docopt.DocoptExit):
        docopt.docopt(other, ['--unknown'], False)
    assert docopt.docopt(other, ['--known'], False)['--known'] is True


def test_hook_is_installed_once(demo):
    hook = docopt.extras
    usage.register(DEMO_USAGE, 'system demo')
    assert docopt.extras is hook
