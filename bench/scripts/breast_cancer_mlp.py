"""examples/breast_cancer_mlp.yaml written by hand in plain PyTorch: the baseline of bench/end_to_end.py.

The same work as `modelworks train examples/breast_cancer_mlp.yaml`: scikit-learn's breast-cancer
data, a stratified split of 20 % test and 10 % validation (seed 42), standard scaling fitted on the
training rows, an MLP 30-50-50-1 with ReLU, BCE on logits, Adam at 1e-3, batches of 32 reshuffled
every epoch, 50 epochs with the validation loss and accuracy after each, and the test accuracy.
"""

import time

import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn

started = time.perf_counter()
torch.manual_seed(0)
x, y = load_breast_cancer(return_X_y=True)
x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.1 / 0.8, random_state=42, stratify=y_rest)
scaler = StandardScaler().fit(x_train)
x_train, x_val, x_test = (torch.tensor(scaler.transform(a), dtype=torch.float32) for a in (x_train, x_val, x_test))
y_train, y_val, y_test = (torch.tensor(a, dtype=torch.float32) for a in (y_train, y_val, y_test))

model = nn.Sequential(nn.Linear(30, 50), nn.ReLU(), nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, 1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = nn.BCEWithLogitsLoss()
order = torch.Generator().manual_seed(0)

for epoch in range(1, 51):
    model.train()
    total = 0.0
    for idx in torch.randperm(len(x_train), generator=order).split(32):
        loss = loss_fn(model(x_train[idx]).squeeze(1), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    model.eval()
    with torch.no_grad():
        logits = model(x_val).squeeze(1)
        val_loss = loss_fn(logits, y_val).item()
        val_accuracy = ((logits > 0).float() == y_val).float().mean().item()
    print(
        f"epoch {epoch}: train_loss {total / len(x_train):.4f}  val_loss {val_loss:.4f}  val_accuracy {val_accuracy:.4f}"
    )

with torch.no_grad():
    test_accuracy = ((model(x_test).squeeze(1) > 0).float() == y_test).float().mean().item()
print(f"test accuracy {test_accuracy:.4f}  ({time.perf_counter() - started:.1f}s)")
