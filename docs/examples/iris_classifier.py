"""A small PyTorch classifier, the starting point of docs/convert.md."""

import torch
from torch import nn


class IrisClassifier(nn.Module):
    def __init__(self, features=4, classes=3):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(features, 16),
            nn.BatchNorm1d(16),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(16, classes),
        )

    def forward(self, features):
        return torch.softmax(self.layers(features), dim=1)


def build_model(classes=3):
    # A real project would load trained weights here, e.g. model.load_state_dict(torch.load("iris.pt")).
    return IrisClassifier(classes=classes)
