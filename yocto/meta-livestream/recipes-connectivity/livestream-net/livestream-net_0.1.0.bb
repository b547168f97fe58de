# nooelint: oelint.var.bbclassextend - device-side boot scripts; no native or SDK use
SUMMARY = "Field network for livestreamd: camera Wi-Fi client and phone access point"
DESCRIPTION = "Reads /boot/livestream-network.txt at boot and generates \
               wpa_supplicant, hostapd, dnsmasq and systemd-networkd \
               configuration so the Pi joins the camera's Wi-Fi (or finds \
               it on USB) and offers the phones a network, on one Wi-Fi \
               chip if need be, where they find the picture by themselves."
SECTION = "net"

require recipes-multimedia/livestreamd/livestreamd-source.inc

inherit allarch deploy systemd

OVERLAY = "${S}/buildroot/board/livestreamd/rootfs-overlay"

SYSTEMD_SERVICE:${PN} = "livestream-net.service livestream-camera.service \
                         livestream-ap.service livestream-dhcp.service"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    install -d ${D}${sbindir} ${D}${systemd_system_unitdir} ${D}${datadir}/livestream-net
    install -m 0755 ${OVERLAY}/usr/sbin/livestream-net ${D}${sbindir}/livestream-net
    # the one writer of the read-only boot partition (atomic replace)
    install -m 0755 ${OVERLAY}/usr/sbin/livestream-bootfs ${D}${sbindir}/livestream-bootfs
    install -m 0755 ${OVERLAY}/usr/sbin/livestream-maintenance ${D}${sbindir}/livestream-maintenance
    # the journal in RAM (the card is read-only)
    install -d ${D}${nonarch_libdir}/systemd/journald.conf.d
    install -m 0644 ${OVERLAY}/usr/lib/systemd/journald.conf.d/livestream.conf ${D}${nonarch_libdir}/systemd/journald.conf.d/livestream.conf
    for unit in livestream-net livestream-camera livestream-ap livestream-dhcp; do
        install -m 0644 ${OVERLAY}/usr/lib/systemd/system/$unit.service ${D}${systemd_system_unitdir}/$unit.service
    done
    install -m 0644 ${OVERLAY}/usr/share/livestream-net/livestream-network.txt ${D}${datadir}/livestream-net/livestream-network.txt
    # strict reverse-path filter: no phone can pass for the camera
    install -d ${D}${sysconfdir}/sysctl.d
    install -m 0644 ${OVERLAY}/usr/lib/sysctl.d/60-livestream-net.conf ${D}${sysconfdir}/sysctl.d/60-livestream-net.conf
    # a camera on USB: DHCP on every USB network link (NCM, ECM, RNDIS)
    install -d ${D}${systemd_unitdir}/network
    install -m 0644 ${OVERLAY}/usr/lib/systemd/network/20-livestream-usb-camera.network ${D}${systemd_unitdir}/network/20-livestream-usb-camera.network
    # keep kernel interface names (wlan0 built-in, wlan1 USB adapter)
    install -d ${D}${sysconfdir}/systemd/network
    ln -sf /dev/null ${D}${sysconfdir}/systemd/network/99-default.link
}

# The editable settings on the FAT boot partition, picked up by
# livestream-image through IMAGE_BOOT_FILES.
do_deploy() {
    install -m 0644 ${OVERLAY}/usr/share/livestream-net/livestream-network.txt ${DEPLOYDIR}/livestream-network.txt
}
addtask deploy after do_install before do_build

FILES:${PN} += "${sysconfdir}/systemd/network/99-default.link \
                ${sysconfdir}/sysctl.d/60-livestream-net.conf \
                ${nonarch_libdir}/systemd/journald.conf.d/livestream.conf \
                ${systemd_unitdir}/network/20-livestream-usb-camera.network"

# iw: the Wi-Fi chips' interface combinations and the access point beside the
# camera's connection; nftables: port 80 on the access point to the daemon;
# kernel-module-mac80211 etc. come with the Wi-Fi drivers; cdc-ncm, cdc-ether
# and rndis-host for a camera on USB are in the Raspberry Pi kernel's modules.
RDEPENDS:${PN} = "dnsmasq hostapd iproute2 iw nftables wpa-supplicant"
