"""Seed 000, "TensorFlow 2 deep learning: image classification and sequence models", §2
"Image classification in practice: CIFAR-10 recognition", as written.

The tutorial's §2 code unchanged (comments and printed labels translated, indentation
restored). Keras' CIFAR-10 pickles are not available here, so the benchmark harness
(``bench/cifar_time_to_accuracy.py``) points ``datasets.cifar10.load_data`` at the local JPEG
copy (``cifar10-jpg``) decoded into the same arrays (uint8 (N, 32, 32, 3), labels (N, 1)) and
times ``model.fit``; nothing else is altered. ``plt.show()`` does nothing under the
harness's non-interactive backend.
"""
# -- §2.1 Load and preprocess the data ------------------------------------------------------
import tensorflow as tf
from tensorflow.keras import datasets, layers, models
# Load the data
(x_train, y_train), (x_test, y_test) = datasets.cifar10.load_data()
# Normalise to [0, 1]
x_train = x_train.astype('float32') / 255.0
x_test = x_test.astype('float32') / 255.0
# One-hot encode the labels
y_train = tf.keras.utils.to_categorical(y_train, 10)
y_test = tf.keras.utils.to_categorical(y_test, 10)
print(f'train shape: {x_train.shape}')
print(f'test shape: {x_test.shape}')

# -- §2.2 Build the CNN model ---------------------------------------------------------------
model = models.Sequential([
    layers.Conv2D(32, (3, 3), activation='relu', padding='same', input_shape=(32, 32, 3)),
    layers.Conv2D(32, (3, 3), activation='relu', padding='same'),
    layers.MaxPooling2D((2, 2)),
    layers.Dropout(0.25),
    layers.Conv2D(64, (3, 3), activation='relu', padding='same'),
    layers.Conv2D(64, (3, 3), activation='relu', padding='same'),
    layers.MaxPooling2D((2, 2)),
    layers.Dropout(0.25),
    layers.Flatten(),
    layers.Dense(256, activation='relu'),
    layers.Dropout(0.5),
    layers.Dense(10, activation='softmax')
])
model.compile(optimizer='adam',
              loss='categorical_crossentropy',
              metrics=['accuracy'])
model.summary()

# -- §2.3 Train and visualise ---------------------------------------------------------------
from tensorflow.keras.callbacks import EarlyStopping
import matplotlib.pyplot as plt
early_stop = EarlyStopping(monitor='val_loss', patience=5, restore_best_weights=True)
history = model.fit(
    x_train, y_train,
    batch_size=64,
    epochs=30,
    validation_split=0.2,
    callbacks=[early_stop]
)


# Plot the accuracy and loss curves
def plot_history(history):
    acc = history.history['accuracy']
    val_acc = history.history['val_accuracy']
    loss = history.history['loss']
    val_loss = history.history['val_loss']
    epochs = range(1, len(acc) + 1)
    plt.figure(figsize=(12, 4))
    plt.subplot(1, 2, 1)
    plt.plot(epochs, acc, 'bo-', label='Training acc')
    plt.plot(epochs, val_acc, 'r*-', label='Validation acc')
    plt.title('Training and Validation Accuracy')
    plt.legend()
    plt.subplot(1, 2, 2)
    plt.plot(epochs, loss, 'bo-', label='Training loss')
    plt.plot(epochs, val_loss, 'r*-', label='Validation loss')
    plt.title('Training and Validation Loss')
    plt.legend()
    plt.show()


plot_history(history)

# -- §2.4 Evaluate the model ----------------------------------------------------------------
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
print(f'Test accuracy: {test_acc:.4f}')
