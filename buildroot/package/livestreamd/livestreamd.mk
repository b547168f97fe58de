################################################################################
#
# livestreamd
#
################################################################################

LIVESTREAMD_VERSION = 0.1.0
LIVESTREAMD_SITE = $(call github,livestreamd,livestreamd,v$(LIVESTREAMD_VERSION))
LIVESTREAMD_LICENSE = MIT
LIVESTREAMD_LICENSE_FILES = LICENSE
LIVESTREAMD_DEPENDENCIES = ffmpeg

# To build from a working tree instead of the release tarball, put
#   LIVESTREAMD_OVERRIDE_SRCDIR = /path/to/livestreamd
# in a local.mk (scripts/build-image.sh does, by default; see
# docs/IMAGES.md). An overridden source is rsynced, not vendored, so its
# crates are fetched into Buildroot's cargo home before the offline build.
ifneq ($(LIVESTREAMD_OVERRIDE_SRCDIR),)
define LIVESTREAMD_FETCH_CRATES
	cd $(@D) && $(TARGET_MAKE_ENV) $(PKG_COMMON_CARGO_ENV) \
		cargo fetch --locked --manifest-path Cargo.toml
endef
LIVESTREAMD_PRE_CONFIGURE_HOOKS += LIVESTREAMD_FETCH_CRATES
endif

define LIVESTREAMD_INSTALL_CONFIG
	$(INSTALL) -D -m 0644 $(@D)/configs/livestreamd.toml \
		$(TARGET_DIR)/etc/livestreamd/livestreamd.toml
endef
LIVESTREAMD_POST_INSTALL_TARGET_HOOKS += LIVESTREAMD_INSTALL_CONFIG

define LIVESTREAMD_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(@D)/systemd/livestreamd.service \
		$(TARGET_DIR)/usr/lib/systemd/system/livestreamd.service
endef

define LIVESTREAMD_USERS
	livestreamd -1 livestreamd -1 * - - video livestreamd daemon
endef

$(eval $(cargo-package))
