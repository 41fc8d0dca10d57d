"""
Whether a directory is a kiwi image description this user can read.
"""
import glob
import os


def description_problem(description: str, kiwi_file: str = '') -> str:
    """
    What keeps a directory from being used as a kiwi description

    :param str kiwi_file: the description file kiwi is told to use
        (--kiwi-file); '' for kiwi's default, config.xml or *.kiwi
    :return: the problem in words, '' when there is none
    """
    if not os.path.isdir(description):
        return f'description directory {description} not found'
    if not os.access(description, os.R_OK | os.X_OK):
        return f'description directory {description} is not readable for this user'
    if kiwi_file:
        if os.path.isfile(os.path.join(description, kiwi_file)):
            return ''
        wanted = kiwi_file
    else:
        if os.path.isfile(os.path.join(description, 'config.xml')) or \
                glob.glob(os.path.join(glob.escape(description), '*.kiwi')):
            return ''
        wanted = 'config.xml or *.kiwi'
    return f'{description} is not a kiwi description: it has no {wanted}'
