"""Models of the book. Every model takes images in [0, 1]; normalisation is inside.

* chapter 0: :class:`SmallIQANet`
* ST Norm (source 000): :class:`STNorm`, :func:`swap_batchnorm`, :class:`LWTA`,
  :class:`FeatureDenoise`, :func:`resnet_iqa`
* neural ODEs (source 003, ch. 3): :class:`ODEBlock`, :func:`odenet`, :class:`FeatureDenoise` (``mode="dot"``),
  :class:`RandomResizePad`
* denoising (source 003, ch. 2): :class:`DnCNN`; single-image baselines :func:`deep_image_prior`,
  :func:`noise2self`
* CIFS (source 003, ch. 4): :class:`CIFS`, :class:`CAS`, :func:`resnet_cifar` (ResNet-18/10, WRN-28-10 with
  CIFS/CAS at P1/P2), :func:`feed_labels`
"""
from robustbook.models.dncnn import DnCNN
from robustbook.models.feature_denoise import FeatureDenoise, add_feature_denoise
from robustbook.models.input_randomization import Randomized, RandomResizePad
from robustbook.models.iqa import SmallIQANet
from robustbook.models.lwta import LWTA, swap_relu_for_lwta
from robustbook.models.normalize import Normalize
from robustbook.models.odenet import (
                                      BasicBlockDynamics,
                                      CNNNet,
                                      ConcatConv2d,
                                      ConvDynamics,
                                      ODEBlock,
                                      ODENet,
                                      ResidualBlock,
                                      odenet,
)
from robustbook.models.resnet_iqa import ResNetIQA, TinyResNet, resnet_iqa
from robustbook.models.single_image import deep_image_prior, noise2self
from robustbook.models.stnorm import (
                                      STNorm,
                                      bpda_soft_threshold,
                                      stnorm_modules,
                                      straight_through_stnorm,
                                      swap_batchnorm,
)

__all__ = ["SmallIQANet", "Normalize", "STNorm", "swap_batchnorm", "stnorm_modules", "straight_through_stnorm",
           "bpda_soft_threshold", "LWTA", "swap_relu_for_lwta", "FeatureDenoise", "add_feature_denoise", "ResNetIQA", "TinyResNet",
           "resnet_iqa", "ODEBlock", "ODENet", "CNNNet", "ConvDynamics", "ConcatConv2d", "BasicBlockDynamics",
           "ResidualBlock", "odenet", "RandomResizePad", "Randomized", "DnCNN",
           "deep_image_prior", "noise2self"]

# BiRQA (source 002): full-reference model, its features and an LPIPS-structured baseline
from robustbook.models.birqa import BiRQA  # noqa: E402
from robustbook.models.birqa_features import BiRQAFeatures  # noqa: E402
from robustbook.models.lpips_like import LPIPSLike  # noqa: E402

__all__ += ["BiRQA", "BiRQAFeatures", "LPIPSLike"]

# Robustness as architecture (source 001): orthogonal convolutions, RobustBlock, NR-IQA models, pruning
from robustbook.models.nr_iqa import DBCNN, NR_MODELS, LinearityIQA, TReS, nr_iqa_model  # noqa: E402
from robustbook.models.orthogonal import AOLConv2d, CayleyConv2d, cayley, orthogonal_conv  # noqa: E402
from robustbook.models.pruning import make_permanent, prunable_convs, prune_filters  # noqa: E402
from robustbook.models.robust_block import MaxMin, RobustBlock, StagedNet  # noqa: E402

__all__ += ["CayleyConv2d", "AOLConv2d", "cayley", "orthogonal_conv", "RobustBlock", "MaxMin", "StagedNet",
            "LinearityIQA", "DBCNN", "TReS", "nr_iqa_model", "NR_MODELS", "prune_filters", "prunable_convs",
            "make_permanent"]

from robustbook.models.cifs import CAS, CIFS, feed_labels, importance_mask  # noqa: E402
from robustbook.models.resnet_cifar import CIFARResNet, resnet_cifar  # noqa: E402

__all__ += ["CIFS", "CAS", "feed_labels", "importance_mask", "CIFARResNet", "resnet_cifar"]
