# nooelint: oelint.var.suggestedvar.CVE_PRODUCT - an image has no CVE product of its own
SUMMARY = "Raspberry Pi image that boots straight into livestreamd"
DESCRIPTION = "Joins the GoPro's Wi-Fi, offers the phones a network and \
               streams at http://192.168.4.1:8080/. Settings live on the boot partition."
HOMEPAGE = "https://github.com/livestreamd/livestreamd"
BUGTRACKER = "https://github.com/livestreamd/livestreamd/issues"
SECTION = "images"
LICENSE = "MIT"

inherit core-image

IMAGE_FEATURES += "ssh-server-dropbear"
# The plug is pulled at any moment: the root file system is read-only
# (/var/volatile and the volatile binds in RAM, the journal with /var/log),
# and the boot partition too (wic/livestream-raspberrypi.wks);
# livestream-maintenance makes them writable until the next boot.
IMAGE_FEATURES += "read-only-rootfs"
WKS_FILE = "livestream-raspberrypi.wks"

IMAGE_INSTALL:append = " \
    ffmpeg \
    dosfstools \
    iw \
    linux-firmware-ath9k \
    linux-firmware-mt7601u \
    linux-firmware-ralink \
    linux-firmware-rtl8188 \
    linux-firmware-rtl8192cu \
    livestream-net \
    livestreamd \
"

# Editable copies on the FAT boot partition, mounted at /boot by the wic
# layout of meta-raspberrypi (sdimage-raspberrypi.wks: part /boot).
IMAGE_BOOT_FILES:append = " livestreamd.toml livestream-network.txt"
# nooelint: oelint.vars.mispell.unknown - do_image_wic is the wic image task of image_types_wic
do_image_wic[depends] += "livestreamd:do_deploy livestream-net:do_deploy"
