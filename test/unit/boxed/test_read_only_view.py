import subprocess

from kiwi_boxed_plugin.read_only_view import main


def test_mounts_then_becomes_the_program(mocker):
    run = mocker.patch(
        'subprocess.run', return_value=subprocess.CompletedProcess([], 0)
    )
    execv = mocker.patch('os.execv')
    main(['/bin/mount', '/d', '/usr/lib/qemu/virtiofsd', '--fd=3'])
    assert [call[0][0] for call in run.call_args_list] == [
        ['/bin/mount', '--bind', '/d', '/d'], ['/bin/mount', '-o', 'remount,bind,ro', '/d']
    ]
    execv.assert_called_once_with(
        '/usr/lib/qemu/virtiofsd', ['/usr/lib/qemu/virtiofsd', '--fd=3']
    )


def test_no_program_without_the_read_only_view(mocker):
    mocker.patch('subprocess.run', return_value=subprocess.CompletedProcess([], 32))
    execv = mocker.patch('os.execv')
    assert main(['/bin/mount', '/d', '/usr/lib/qemu/virtiofsd']) == 32
    execv.assert_not_called()
