# nooelint: oelint.var.bbclassextend - a daemon for the target board only; no native or SDK use
SUMMARY = "Keeps a GoPro streaming and serves it to phones, adapting to each Wi-Fi link"
DESCRIPTION = "livestreamd supervises the camera and ffmpeg, serves the \
               re-encoded H.264 MPEG-TS stream over HTTP (port 8080) to \
               smartphones and lowers or raises the resolution per viewer \
               so the picture stays live."
SECTION = "multimedia"

require livestreamd-source.inc
# Crates for offline fetching; regenerate with scripts/gen-yocto-crates.sh
# --write (same output as "bitbake -c update_crates livestreamd").
require ${BPN}-crates.inc

inherit cargo cargo-update-recipe-crates deploy systemd useradd

SYSTEMD_SERVICE:${PN} = "livestreamd.service"

USERADD_PACKAGES = "${PN}"
USERADD_PARAM:${PN} = "--system --no-create-home --home-dir /nonexistent \
                       --shell /sbin/nologin --groups video --user-group livestreamd"

do_install:append() {
    install -d ${D}${systemd_system_unitdir}
    install -m 0644 ${S}/systemd/livestreamd.service ${D}${systemd_system_unitdir}/livestreamd.service
    install -d ${D}${sysconfdir}/livestreamd
    install -m 0644 ${S}/configs/livestreamd.toml ${D}${sysconfdir}/livestreamd/livestreamd.toml
}

# The editable copy on the FAT boot partition (/boot/livestreamd.toml),
# picked up by livestream-image through IMAGE_BOOT_FILES.
do_deploy() {
    install -m 0644 ${S}/configs/livestreamd.toml ${DEPLOYDIR}/livestreamd.toml
}
addtask deploy after do_install before do_build

CONFFILES:${PN} = "${sysconfdir}/livestreamd/livestreamd.toml"

RDEPENDS:${PN} = "ffmpeg"
