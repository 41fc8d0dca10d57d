"""Defaults of the boxed plugin, in one place."""
import os
from typing import List, Optional, Tuple

# openSUSE's download server, over https: kiwi's own default is plain
# http, which would let anyone on the path swap the .sha256 files too
OBS_DOWNLOAD_URL = 'https://download.opensuse.org/repositories'

# the system's CA bundle on Debian/Ubuntu, openSUSE/SLES, Fedora/RHEL
SYSTEM_CA_BUNDLES = (
    '/etc/ssl/certs/ca-certificates.crt',
    '/etc/ssl/ca-bundle.pem',
    '/etc/pki/tls/certs/ca-bundle.crt',
)


class Defaults:
    """
    Static defaults of the boxed plugin
    """
    @staticmethod
    def get_packaged_catalog() -> str:
        """
        The catalog of the published boxes that ships with the plugin
        """
        return os.path.join(os.path.dirname(__file__), 'kiwi_boxed_plugin.yml')

    @staticmethod
    def get_user_catalog_candidates() -> List[str]:
        """
        Where a user's catalog may be, first found wins

        There is deliberately no lookup in the current directory: a
        checked out project must not redirect where boxes come from.
        """
        candidates = []
        from_environment = os.environ.get('KIWI_BOXED_PLUGIN_CFG')
        if from_environment:
            candidates.append(from_environment)
        candidates += [
            os.path.expanduser('~/.config/kiwi/kiwi_boxed_plugin.yml'),
            '/etc/kiwi_boxed_plugin.yml'
        ]
        return candidates

    @staticmethod
    def get_cache_root() -> str:
        """
        Where downloaded boxes live: $KIWI_BOXED_CACHE_DIR or ~/.kiwi_boxes
        """
        return os.path.expanduser(
            os.environ.get('KIWI_BOXED_CACHE_DIR') or '~/.kiwi_boxes'
        )

    @staticmethod
    def get_kvm_probe_limit_ms() -> float:
        """
        How long the tiny KVM guest (2,097,152 loop turns) may take

        A healthy KVM runs it in about 1 ms; hosts whose KVM only runs
        special guest kernels (kvm_pvm) would need 1 to 4 s (the probe
        stops them at this limit), and a stock box kernel would need
        most of an hour to boot there. The limit is some 30 times off
        either outcome: a loaded host does not make a working KVM look
        slow, nor a faster paravirtual one look fast.
        """
        return 30.0

    @staticmethod
    def get_kvm_console_silence_seconds() -> int:
        """
        How long a box under KVM may stay silent on its console before
        it is restarted under software emulation

        A working KVM shows the box console within seconds; the bound
        is generous so that a loaded host is not mistaken for a
        broken KVM.
        """
        return 90

    @staticmethod
    def get_job_start_seconds() -> int:
        """
        How long a box may take from its start to the start of its job
        ($KIWI_BOXED_START_TIMEOUT overrides it)

        Under software emulation a box starts its job 15 to 25 s after
        qemu, sshfs mounts take 10 s more, and the agent waits up to a
        minute for the network. The bound allows for a host many times
        slower or busier than that, several boxes at once, and a foreign
        architecture; --kiwi-version's pip install comes after the
        start, so it does not count.
        """
        return 600

    @staticmethod
    def get_box_panic_seconds() -> int:
        """
        The kernel's panic= of every box: seconds after a panic until
        the box reboots, which with qemu's -no-reboot ends it; time to
        get the panic message out on the console
        """
        return 5

    @staticmethod
    def get_console_log_name() -> str:
        """
        The file in the target dir that receives the box console
        """
        return 'boxbuild.console.log'

    @staticmethod
    def get_console_log(target_dir: str) -> str:
        """
        The console log of a run into target_dir
        """
        return os.path.join(target_dir, Defaults.get_console_log_name())

    @staticmethod
    def get_helper_start_seconds() -> int:
        """
        How long a share helper (virtiofsd, sshd) may take to be ready
        """
        return 20

    @staticmethod
    def get_qemu_stop_seconds() -> int:
        """
        How long qemu gets to end after SIGTERM before it is killed
        """
        return 10

    @staticmethod
    def get_obs_download_url() -> str:
        """
        Base URL of obs:// box sources

        kiwi's runtime config 'obs: - download_url' wins; when it is not
        set kiwi answers with its own plain http default, which is
        replaced by the https server.
        """
        from kiwi.defaults import Defaults as KiwiDefaults
        from kiwi.runtime_config import RuntimeConfig
        configured = RuntimeConfig().get_obs_download_server_url()
        if configured == KiwiDefaults.get_obs_download_server_url():
            return OBS_DOWNLOAD_URL
        return configured

    @staticmethod
    def get_download_timeouts() -> Tuple[float, float]:
        """
        Seconds to connect and seconds of silence while reading, after
        which a download attempt counts as failed and is retried
        """
        return (15.0, 60.0)

    @staticmethod
    def get_download_retries() -> int:
        """
        How often a failed download attempt is retried, resuming
        where it stopped
        """
        return 4

    @staticmethod
    def get_download_backoff() -> float:
        """
        Seconds before the first retry; doubled for every further one
        """
        return 2.0

    @staticmethod
    def get_download_chunk_size() -> int:
        """
        Bytes read and hashed per step: large enough that hashing
        and writing cost little per call on a fast link, small because
        the step that a dropped connection interrupts is lost
        """
        return 1 << 20

    @staticmethod
    def get_small_file_limit() -> int:
        """
        Largest .sha256 or packages file accepted, so that a wrong URL
        serving a big file cannot fill memory
        """
        return 64 << 20

    @staticmethod
    def get_ca_bundle() -> Optional[str]:
        """
        The system's CA bundle for https downloads, None to keep what
        requests uses (its own certifi bundle, or $REQUESTS_CA_BUNDLE)

        Like curl and zypper, trust what the administrator installed
        into the system store, e.g. the CA of a company proxy.
        """
        return next((path for path in SYSTEM_CA_BUNDLES if os.path.isfile(path)), None)
