/* host/label_font.h — a 5x7 bitmap font (upper-case letters, digits and a
 * few signs) for labelling image grids; lower case is drawn as upper case. */
#ifndef HOST_LABEL_FONT_H
#define HOST_LABEL_FONT_H

#include <stdint.h>

#define FONT_W 5
#define FONT_H 7
#define FONT_ADVANCE 6 /* glyph width + one column of spacing */

/* Pixel width of text drawn at `scale`. */
int font_text_width(const char *text, int scale);
/* Draws text into an RGB image (w x h) with its top-left corner at (x, y). */
void font_draw(uint8_t *rgb, int w, int h, int x, int y, const char *text, int scale, const uint8_t color[3]);

#endif
