include $(sort $(wildcard $(BR2_EXTERNAL_LIVESTREAMD_PATH)/package/*/*.mk))
