"""Seed 000, "TensorFlow 2 deep learning: image classification and sequence models", §3
"Sequence models in practice: IMDB sentiment analysis", as written.

The tutorial's §3 code unchanged (comments and printed labels translated), plus the two
things §3 reuses from §2.3: the ``EarlyStopping`` import and ``plot_history``. Keras'
pre-tokenised ``imdb.npz`` is not available here, so the benchmark harness
(``bench/imdb_time_to_accuracy.py``) points ``imdb.load_data`` / ``imdb.get_word_index`` at
the raw-text reviews tokenised to the same format (word ids ranked by frequency, start 1,
out-of-vocabulary 2, ``index_from=3``, ``num_words`` = ``max_features``) and times
``model.fit``; nothing else is altered.
"""
# -- from §2.3 (reused by §3.3) --------------------------------------------------------------
from tensorflow.keras.callbacks import EarlyStopping
import matplotlib.pyplot as plt


# Plot the accuracy and loss curves
def plot_history(history):
    acc = history.history['accuracy']
    val_acc = history.history['val_accuracy']
    loss = history.history['loss']
    val_loss = history.history['val_loss']
    epochs = range(1, len(acc)+1)
    plt.figure(figsize=(12,4))
    plt.subplot(1,2,1)
    plt.plot(epochs, acc, 'bo-', label='Training acc')
    plt.plot(epochs, val_acc, 'r*-', label='Validation acc')
    plt.title('Training and Validation Accuracy')
    plt.legend()
    plt.subplot(1,2,2)
    plt.plot(epochs, loss, 'bo-', label='Training loss')
    plt.plot(epochs, val_loss, 'r*-', label='Validation loss')
    plt.title('Training and Validation Loss')
    plt.legend()
    plt.show()


# -- §3.1 Data loading and preprocessing -----------------------------------------------------
from tensorflow.keras.datasets import imdb
from tensorflow.keras.preprocessing.sequence import pad_sequences
max_features = 10000  # vocabulary size
maxlen = 200  # every review is truncated or padded to this length
(x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=max_features)
# Pad the sequences to the same length
x_train = pad_sequences(x_train, maxlen=maxlen)
x_test = pad_sequences(x_test, maxlen=maxlen)
print(f'train shape: {x_train.shape}')
print(f'test shape: {x_test.shape}')

# -- §3.2 Build the LSTM model ---------------------------------------------------------------
from tensorflow.keras.models import Sequential
from tensorflow.keras.layers import Embedding, LSTM, Dense, Dropout
model = Sequential([
Embedding(max_features, 128, input_length=maxlen),
LSTM(64, dropout=0.2, recurrent_dropout=0.2),
Dense(1, activation='sigmoid')
])
model.compile(optimizer='adam',
loss='binary_crossentropy',
metrics=['accuracy'])
model.summary()

# -- §3.3 Train and validate -----------------------------------------------------------------
# Early stopping and a validation set monitor training, as before.
early_stop = EarlyStopping(monitor='val_loss', patience=3, restore_best_weights=True)
history = model.fit(
x_train, y_train,
batch_size=128,
epochs=10,
validation_split=0.2,
callbacks=[early_stop]
)
plot_history(history) # reuse the plotting function from the previous section

# -- §3.4 Evaluate ---------------------------------------------------------------------------
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=2)
print(f'Test accuracy: {test_acc:.4f}')

# -- §3.5 Predict with the model -------------------------------------------------------------
word_index = imdb.get_word_index()
reverse_word_index = dict([(value, key) for (key, value) in word_index.items()])
def decode_review(text_sequence):
    return ' '.join([reverse_word_index.get(i-3, '?') for i in text_sequence])
# Example: predict the first test review
sample_review = x_test[0].reshape(1, maxlen)
pred = model.predict(sample_review)[0][0]
label = 'Positive' if pred > 0.5 else 'Negative'
print(f'Prediction: {label} (confidence {pred:.4f})')
print('Original review (decoded):', decode_review(x_test[0][:50]), '...')
