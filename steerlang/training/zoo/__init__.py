"""The zoo builder: trains the tiny CLIP and its SAEs and measures the phenomena the zoo card reports."""
