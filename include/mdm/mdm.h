// libmdm's public API in one include.
#pragma once

#include <mdm/config/config.h>
#include <mdm/config/model_config.h>
#include <mdm/io/safetensors.h>
#include <mdm/models/build.h>
#include <mdm/models/denoiser.h>
#include <mdm/models/dimr.h>
#include <mdm/models/nested_unet.h>
#include <mdm/models/state_dict.h>
#include <mdm/models/summary.h>
#include <mdm/models/unet.h>
#include <mdm/util/error.h>
