"""Models of the book. Every model takes images in [0, 1]; normalisation is inside.

* chapter 0: :class:`SmallIQANet`
* ST Norm (source 000): :class:`STNorm`, :func:`swap_batchnorm`, :class:`LWTA`,
  :class:`FeatureDenoise`, :func:`resnet_iqa`
* robustness as architecture (source 001): :class:`CayleyConv2d`, :class:`AOLConv2d`, :class:`RobustBlock`,
  the NR-IQA structures :class:`LinearityIQA`, :class:`DBCNN`, :class:`TReS`, filter pruning
* BiRQA (source 002): :class:`BiRQA`, its features :class:`BiRQAFeatures`, an LPIPS-structured baseline
* denoising (source 003, ch. 2): :class:`DnCNN`; single-image baselines :func:`deep_image_prior`,
  :func:`noise2self`
* neural ODEs (source 003, ch. 3): :class:`ODEBlock`, :func:`odenet`, :class:`FeatureDenoise` (``mode="dot"``),
  :class:`RandomResizePad`
* CIFS (source 003, ch. 4): :class:`CIFS`, :class:`CAS`, :func:`resnet_cifar` (ResNet-18/10, WRN-28-10 with
  CIFS/CAS at P1/P2), :func:`feed_labels`
"""
from robustbook.models.birqa import BiRQA
from robustbook.models.birqa_features import BiRQAFeatures
from robustbook.models.cifs import CAS, CIFS, feed_labels, importance_mask
from robustbook.models.dncnn import DnCNN
from robustbook.models.feature_denoise import FeatureDenoise, add_feature_denoise
from robustbook.models.input_randomization import Randomized, RandomResizePad
from robustbook.models.iqa import SmallIQANet
from robustbook.models.lpips_like import LPIPSLike
from robustbook.models.lwta import LWTA, swap_relu_for_lwta
from robustbook.models.normalize import Normalize
from robustbook.models.nr_iqa import DBCNN, NR_MODELS, LinearityIQA, TReS, nr_iqa_model
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
from robustbook.models.orthogonal import AOLConv2d, CayleyConv2d, cayley, orthogonal_conv
from robustbook.models.pruning import make_permanent, prunable_convs, prune_filters
from robustbook.models.resnet_cifar import CIFARResNet, resnet_cifar
from robustbook.models.resnet_iqa import ResNetIQA, TinyResNet, resnet_iqa
from robustbook.models.robust_block import MaxMin, RobustBlock, StagedNet
from robustbook.models.single_image import deep_image_prior, noise2self
from robustbook.models.stnorm import (
                                      STNorm,
                                      bpda_soft_threshold,
                                      stnorm_modules,
                                      straight_through_stnorm,
                                      swap_batchnorm,
)

__all__ = [
    # chapter 0 and shared
    "SmallIQANet", "Normalize", "ResNetIQA", "TinyResNet", "resnet_iqa",
    # ST Norm
    "STNorm", "swap_batchnorm", "stnorm_modules", "straight_through_stnorm", "bpda_soft_threshold",
    "LWTA", "swap_relu_for_lwta", "FeatureDenoise", "add_feature_denoise",
    # robustness as architecture
    "CayleyConv2d", "AOLConv2d", "cayley", "orthogonal_conv", "RobustBlock", "MaxMin", "StagedNet",
    "LinearityIQA", "DBCNN", "TReS", "nr_iqa_model", "NR_MODELS", "prune_filters", "prunable_convs",
    "make_permanent",
    # BiRQA
    "BiRQA", "BiRQAFeatures", "LPIPSLike",
    # denoising
    "DnCNN", "deep_image_prior", "noise2self",
    # neural ODEs
    "ODEBlock", "ODENet", "CNNNet", "ConvDynamics", "ConcatConv2d", "BasicBlockDynamics", "ResidualBlock", "odenet",
    "RandomResizePad", "Randomized",
    # CIFS
    "CIFS", "CAS", "feed_labels", "importance_mask", "CIFARResNet", "resnet_cifar",
]

# robustness as architecture: PLS pruning, the source's original backbones and their weights
from robustbook.models.nr_backbones import WeightsMismatchError, resnet50_stages, scnn_features, vgg16_stages  # noqa: E402
from robustbook.models.nr_iqa import load_pretrained  # noqa: E402
from robustbook.models.pruning import pls_filter_importance  # noqa: E402
from robustbook.models.robust_block import StageList  # noqa: E402

__all__ += ["pls_filter_importance", "StageList", "resnet50_stages", "vgg16_stages", "scnn_features",
            "load_pretrained", "WeightsMismatchError"]

# BiRQA chapter: a TOPIQ-FR-structured baseline (random-init backbone; pyiqa is not installed)
from robustbook.models.topiq_like import TOPIQLike  # noqa: E402

__all__ += ["TOPIQLike"]
